import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest

#if canImport(Glibc)
    import Glibc
#endif

/// The task graph of a run — the only description of it. `sluice plan` prints it, `sluice run`
/// writes it to `_work/plan.json` and hands it to an executor, and `sluice worker --task ID`
/// reads its task from that file; nothing re-plans.
///
/// The graph is derived from the config and the input files alone — never from the worker count,
/// the executor or timing — so every task's output name is stable across runs and resumes. It
/// has two phases: the number of materialize tasks depends on the token count, so those tasks
/// are *expanded* from the window task's completion record once it exists (`expansion`).
public struct Plan: Codable, Sendable, Equatable {
    public static let formatName = "sluice.plan.v2"
    public var format = Plan.formatName
    /// The tasks known before the run starts, in dependency order (stage by stage).
    public var tasks: [TaskSpec]
    /// The stage whose tasks are made from an upstream task's completion record.
    public var expansion: Expansion?

    public struct Expansion: Codable, Sendable, Equatable {
        public var stage: Stage
        /// The task whose completion record lists them.
        public var after: TaskID
        /// That record, relative to the output directory.
        public var record: String

        /// The stage's tasks from `layout`'s record, once the task they come after has written it.
        public func tasks(layout: OutputLayout) throws -> [TaskSpec] {
            let window: WindowStage.Sidecar
            do {
                window = try StableJSON.decode(WindowStage.Sidecar.self, from: layout.path(record))
            } catch {
                throw PipelineError(
                    .missingInput,
                    "the \(stage) tasks come from \(layout.path(record)), which the \(after) task writes; it is missing or unreadable — run that task first",
                    path: layout.path(record))
            }
            return Plan.materializeTasks(from: window)
        }
    }

    /// Expands the config's inputs now and plans the tasks.
    public init(configuration: Configuration) throws {
        let patterns = configuration.inputs.map(configuration.resolvePath)
        let files: [InputFile]
        do {
            files = try InputResolver.expand(
                patterns, baseDirectory: configuration.baseDirectory, readHidden: !configuration.ingest.skipHiddenFiles)
        } catch {
            throw PipelineError(.config, "\(configuration.file): inputs: \(error)")
        }
        self.init(configuration: configuration, files: files)
    }

    /// Plans the tasks over an already expanded input list.
    public init(configuration: Configuration, files: [InputFile]) {
        let names = OutputLayout.relative
        let groups = Self.group(files, partBytes: configuration.ingest.partBytes)
        let tokenizer = configuration.tokenizer
        let words = tokenizer?.words != nil
        // Training BPE and building a word vocabulary from the documents both count words first.
        let train = tokenizer?.train != nil || (words && tokenizer?.words?.vocabFrom == nil)
        let window = configuration.window != nil && tokenizer != nil
        var tasks: [TaskSpec] = []
        for (part, inputs) in groups.enumerated() {
            tasks.append(
                TaskSpec(
                    id: TaskID(.ingest, part),
                    writes: [names.docsPart(part), names.docsSidecar(part)],
                    weight: inputs.reduce(0) { $0 + ($1.byteRange?.count ?? $1.byteCount) }, inputs: inputs))
        }
        let ingestIDs = tasks.map(\.id)
        let partWeights = tasks.map(\.weight)
        if train {
            for part in groups.indices {
                tasks.append(
                    TaskSpec(
                        id: TaskID(.count, part), needs: [TaskID(.ingest, part)], reads: [names.docsPart(part)],
                        writes: [names.wordCounts(part), names.wordCountsSidecar(part)], weight: partWeights[part]))
            }
        }
        var tokenizeIDs: [TaskID] = []
        if let tokenizer {
            tasks.append(
                TaskSpec(
                    id: .tokenizer, needs: train ? groups.indices.map { TaskID(.count, $0) } : [],
                    reads: train
                        ? ["_work/wordcounts/"]
                        : tokenizer.words?.vocabFrom.map { [$0] } ?? [tokenizer.vocab]
                            + (tokenizer.merges.map { [$0] } ?? []),
                    writes: [names.workTokenizerFile(words: words), names.workTokenizerRecord]))
            for part in groups.indices {
                tasks.append(
                    TaskSpec(
                        id: TaskID(.tokenize, part), needs: [TaskID(.ingest, part), .tokenizer],
                        reads: [names.docsPart(part)],
                        writes: [names.tokensPart(part), names.tokensDocumentLengths(part), names.tokensSidecar(part)],
                        weight: partWeights[part]))
                tokenizeIDs.append(TaskID(.tokenize, part))
            }
        }
        if window {
            let tables =
                configuration.embedding == nil
                ? [] : [names.table(WindowStage.tokenTableName), names.table(WindowStage.positionTableName)]
            tasks.append(
                TaskSpec(
                    id: .window, needs: tokenizeIDs, reads: ["tokens/"],
                    writes: [names.streamFile, names.windowsFile] + tables + [names.windowSidecar]))
            expansion = Expansion(stage: .materialize, after: .window, record: names.windowSidecar)
        }
        tasks.append(
            TaskSpec(
                id: .finalize, needs: ingestIDs + tokenizeIDs + (window ? [.window] : []),
                needsEvery: window ? [.materialize] : [], reads: ["the completion records"],
                writes: [names.report] + (tokenizer == nil ? [] : [names.tokenizerFile(words: words)])
                    + (window ? [names.manifest] : [])))
        self.tasks = tasks
    }

    /// The materialize tasks: one per shard of the window task's record.
    static func materializeTasks(from window: WindowStage.Sidecar) -> [TaskSpec] {
        let names = OutputLayout.relative
        return window.allShards.map { span in
            let split = span.split == nil ? names : ValidationSplit.layout(names)
            let local = span.shard - (span.split == nil ? 0 : window.shards.count)
            let prefix = span.split.map { "\($0) " } ?? ""
            if let first = span.firstToken, let count = span.tokenCount {
                return TaskSpec(
                    id: TaskID(.materialize, span.shard), needs: [.window],
                    reads: ["ids \(first)..<\(first + count) of \(split.streamFile)"],
                    writes: [split.tokenShard(local), names.shardRecord(span.shard)],
                    weight: count)
            }
            return TaskSpec(
                id: TaskID(.materialize, span.shard), needs: [.window],
                reads: ["\(prefix)batches \(span.firstBatch)..<\(span.firstBatch + span.batchCount)"],
                writes: [split.shard(local), names.shardRecord(span.shard)], weight: span.batchCount,
                batches: TaskSpec.BatchRange(first: span.firstBatch, count: span.batchCount))
        }
    }

    /// The plan with `expanded` tasks among its own, in stage order (what the plan file shows
    /// once the expansion is known).
    public func including(_ expanded: [TaskSpec]) -> Plan {
        var plan = self
        plan.tasks = (tasks + expanded).enumerated().sorted {
            ($0.element.id.stage, $0.offset) < ($1.element.id.stage, $1.offset)
        }.map(\.element)
        return plan
    }

    // MARK: - The plan file

    /// Writes `_work/plan.json`: one JSON document, with each task on a line of its own (each
    /// part encoded by `JSONEncoder`, sorted keys) — so a worker finds its task by searching
    /// the file for its id and decodes that line alone, in time that hardly grows with the plan
    /// (PlanBenchmark: 100,000 inputs).
    public func write(to layout: OutputLayout, encoder: PlanFileEncoder = PlanFileEncoder()) throws {
        try AtomicFileWriter.write(try encoder.encode(self), to: layout.planFile)
    }

    /// The plan file's bytes (what `sluice plan --json` prints).
    public func encoded() throws -> [UInt8] { try PlanFileEncoder().encode(self) }

    /// Reads `_work/plan.json`.
    public static func load(from layout: OutputLayout) throws -> Plan {
        let plan: Plan
        do {
            plan = try JSONDecoder().decode(Plan.self, from: try readPlanFile(layout))
        } catch let error as PipelineError {
            throw error
        } catch {
            throw damaged(layout, error)
        }
        guard plan.format == formatName else { throw wrongFormat(layout, plan.format) }
        return plan
    }

    /// The spec of task `id` from `layout`'s plan file, decoding only its line (and, for a task of
    /// the expanded stage that the file does not list yet, the upstream record it comes from).
    public static func task(_ id: TaskID, layout: OutputLayout) throws -> TaskSpec {
        let data = try readPlanFile(layout)
        let decoder = JSONDecoder()
        return try data.withUnsafeBytes { raw -> TaskSpec in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let headerEnd = bytes.firstIndex(of: 0x0A) else {
                throw damaged(layout, PipelineError(.damagedOutput, "no task lines"))
            }
            struct Header: Decodable {
                var format: String
                var expansion: Expansion?
            }
            let header: Header
            do {
                header = try decoder.decode(Header.self, from: Data(bytes[..<headerEnd]) + Data("]}".utf8))
            } catch {
                throw damaged(layout, error)
            }
            guard header.format == formatName else { throw wrongFormat(layout, header.format) }
            // `"id":"…"` unescaped occurs once per task line: inside a string, quotes are escaped.
            let needle = Array(#""id":"\#(id)""#.utf8)
            if let line = Self.line(containing: needle, in: bytes) {
                do {
                    return try decoder.decode(TaskSpec.self, from: Data(line))
                } catch {
                    throw damaged(layout, error)
                }
            }
            if let expansion = header.expansion, id.stage == expansion.stage,
                let spec = try expansion.tasks(layout: layout).first(where: { $0.id == id })
            {
                return spec
            }
            throw PipelineError(
                .config,
                "\(id) is not in the plan of \(layout.root); sluice plan CONFIG --out \(layout.root) lists its tasks",
                path: layout.planFile)
        }
    }

    /// The line of `bytes` holding `needle`, without its trailing comma.
    private static func line(containing needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let first = needle.first, let base = bytes.baseAddress, needle.count <= bytes.count else { return nil }
        var offset = 0
        // memchr to each candidate first byte, then compare: a few milliseconds over megabytes.
        while offset <= bytes.count - needle.count {
            guard let hit = memchr(base + offset, Int32(first), bytes.count - needle.count + 1 - offset) else {
                return nil
            }
            let position = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + position, needle, needle.count) == 0 {
                var start = position
                while start > 0 && bytes[start - 1] != 0x0A { start -= 1 }
                var end = position
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                if end > start && bytes[end - 1] == 0x2C { end -= 1 }
                return Array(bytes[start..<end])
            }
            offset = position + 1
        }
        return nil
    }

    private static func readPlanFile(_ layout: OutputLayout) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: layout.planFile))
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            throw PipelineError(
                .missingInput,
                "\(layout.planFile) does not exist: \(layout.root) has no plan yet — run sluice run, or sluice plan CONFIG --out \(layout.root) --write",
                path: layout.planFile)
        } catch {
            throw PipelineError.classify(error)
        }
    }

    private static func damaged(_ layout: OutputLayout, _ error: any Error) -> PipelineError {
        PipelineError(
            .damagedOutput, "\(layout.planFile): not a Sluice plan (\(error)); run sluice run again to rewrite it",
            path: layout.planFile)
    }

    private static func wrongFormat(_ layout: OutputLayout, _ format: String) -> PipelineError {
        PipelineError(
            .damagedOutput,
            "\(layout.planFile): plan format \"\(format)\", this sluice reads \"\(formatName)\"; run sluice run again to rewrite it",
            path: layout.planFile)
    }

    // MARK: - Cutting inputs into ingest tasks

    /// Consecutive inputs until a group reaches `partBytes`; an input larger than that is a
    /// task of its own — or, if it is an uncompressed JSON Lines file, one task per
    /// `partBytes` slice of it (lines belong to the slice they start in), so one huge file
    /// still spreads over the workers.
    static func group(_ files: [InputFile], partBytes: Int) -> [[InputFile]] {
        var groups: [[InputFile]] = []
        var current: [InputFile] = []
        var size = 0
        func flush() {
            if !current.isEmpty { groups.append(current) }
            current = []
            size = 0
        }
        for file in files {
            if file.byteCount > partBytes && file.isSplittable {
                flush()
                for start in stride(from: 0, to: file.byteCount, by: partBytes) {
                    var slice = file
                    slice.byteRange = start..<min(start + partBytes, file.byteCount)
                    groups.append([slice])
                }
                continue
            }
            if !current.isEmpty && size + file.byteCount > partBytes { flush() }
            current.append(file)
            size += file.byteCount
        }
        flush()
        return groups
    }
}

/// Encodes plan files, each task's line once: the coordinator writes the plan again when the
/// expanded tasks are known, and re-encoding thousands of input lists would double its cost.
public final class PlanFileEncoder {
    private let encoder = JSONEncoder()
    private var lines: [TaskID: [UInt8]] = [:]

    public init() {
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    public func encode(_ plan: Plan) throws -> [UInt8] {
        var bytes = Array(#"{"format":"#.utf8) + (try encoder.encode(plan.format))
        let expansion = try plan.expansion.map { Array(try encoder.encode($0)) } ?? Array("null".utf8)
        bytes += Array(#","expansion":"#.utf8) + expansion + Array(#","tasks":["#.utf8) + [0x0A]
        for (index, task) in plan.tasks.enumerated() {
            if let line = lines[task.id] {
                bytes += line
            } else {
                let line = Array(try encoder.encode(task))
                lines[task.id] = line
                bytes += line
            }
            bytes += index == plan.tasks.count - 1 ? [0x0A] : [0x2C, 0x0A]
        }
        return bytes + Array("]}\n".utf8)
    }
}
