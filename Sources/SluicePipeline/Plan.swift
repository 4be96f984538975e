import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest

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
    }

    /// Expands the config's inputs now and plans the tasks.
    public init(configuration: Configuration) throws {
        let patterns = configuration.inputs.map(configuration.resolvePath)
        let files: [InputFile]
        do {
            files = try InputResolver.expand(patterns, baseDirectory: configuration.baseDirectory)
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
        let train = tokenizer?.train != nil
        let window = configuration.window != nil && tokenizer != nil
        var tasks: [TaskSpec] = []
        for (part, inputs) in groups.enumerated() {
            tasks.append(
                TaskSpec(
                    id: TaskID(.ingest, part), reads: inputs.map(\.identity),
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
                    reads: train ? ["_work/wordcounts/"] : [tokenizer.vocab] + (tokenizer.merges.map { [$0] } ?? []),
                    writes: [names.workTokenizer, names.workTokenizerRecord]))
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
                writes: [names.report] + (tokenizer == nil ? [] : [names.tokenizer])
                    + (window ? [names.manifest] : [])))
        self.tasks = tasks
    }

    /// The materialize tasks: one per shard of the window task's record.
    public func expandedTasks(from window: WindowStage.Sidecar) -> [TaskSpec] {
        let names = OutputLayout.relative
        return window.shards.map { span in
            TaskSpec(
                id: TaskID(.materialize, span.shard), needs: [.window],
                reads: ["batches \(span.firstBatch)..<\(span.firstBatch + span.batchCount)"],
                writes: [names.shard(span.shard), names.shardRecord(span.shard)], weight: span.batchCount,
                batches: TaskSpec.BatchRange(first: span.firstBatch, count: span.batchCount))
        }
    }

    /// The expanded tasks from `layout`'s record, once the task they come after has written it.
    public func expandedTasks(layout: OutputLayout) throws -> [TaskSpec] {
        guard let expansion else { return [] }
        let record: WindowStage.Sidecar
        do {
            record = try StableJSON.decode(WindowStage.Sidecar.self, from: layout.path(expansion.record))
        } catch {
            throw PipelineError(
                .missingInput,
                "the \(expansion.stage) tasks come from \(layout.path(expansion.record)), which the \(expansion.after) task writes; it is missing or unreadable — run that task first",
                path: layout.path(expansion.record))
        }
        return expandedTasks(from: record)
    }

    /// The spec of task `id`: from the plan, or for an expanded stage from its record.
    public func task(_ id: TaskID, layout: OutputLayout) throws -> TaskSpec {
        if let spec = tasks.first(where: { $0.id == id }) { return spec }
        if id.stage == expansion?.stage, let spec = try expandedTasks(layout: layout).first(where: { $0.id == id }) {
            return spec
        }
        let stages = Set(tasks.map(\.id.stage)).union(expansion.map { [$0.stage] } ?? [])
        let count = tasks.filter { $0.id.stage == id.stage }.count
        throw PipelineError(
            .config,
            count > 0
                ? "\(id) is not in the plan of \(layout.root) (it has \(count) \(id.stage) task(s)); see sluice plan"
                : "\(id) is not in the plan of \(layout.root), which has no \(id.stage) stage (it has \(Stage.allCases.filter(stages.contains).map(\.rawValue).joined(separator: ", ")))"
        )
    }

    // MARK: - The plan file

    /// Writes `_work/plan.json`.
    public func write(to layout: OutputLayout) throws {
        try AtomicFileWriter.write(try StableJSON.encode(self), to: layout.planFile)
    }

    /// Reads `_work/plan.json`.
    public static func load(from layout: OutputLayout) throws -> Plan {
        let plan: Plan
        do {
            plan = try StableJSON.decode(Plan.self, from: layout.planFile)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            throw PipelineError(
                .missingInput,
                "\(layout.planFile) does not exist: \(layout.root) has no plan yet — run sluice run, or sluice plan CONFIG --out \(layout.root) --write",
                path: layout.planFile)
        } catch {
            throw PipelineError(
                .damagedOutput, "\(layout.planFile): not a Sluice plan (\(error)); run sluice run again to rewrite it",
                path: layout.planFile)
        }
        guard plan.format == formatName else {
            throw PipelineError(
                .damagedOutput,
                "\(layout.planFile): plan format \"\(plan.format)\", this sluice reads \"\(formatName)\"; run sluice run again to rewrite it",
                path: layout.planFile)
        }
        return plan
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
