import Dispatch
import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a config's stages into its output directory, resuming finished tasks.
///
/// The coordinator plans the tasks and hands them to a `LocalExecutor`, which runs each as a
/// `sluice worker` child process; every task writes only its own files, named after its unit
/// of work, so the output does not depend on the worker count, on timing, or on interruptions.
public struct PipelineRunner {
    public struct Options: Sendable {
        public var outputOverride: String?
        public var workersOverride: Int?
        public var retriesOverride: Int?
        /// Exit non-zero when anything was skipped.
        public var strict = false
        /// Start over in an output directory made with a different config.
        public var force = false
        /// The `sluice` binary the workers run (default: this process's executable).
        public var workerExecutable: String?
        /// Extra environment for the workers.
        public var workerEnvironment: [String: String] = [:]
        public init() {}
    }

    /// Wall and CPU time of one stage's tasks, and their largest peak RSS.
    public struct StageTiming: Codable, Sendable {
        public var tasks: Int
        public var wallSeconds: Double
        public var cpuSeconds: Double
        public var peakRSSBytes: Int
        public var retries: Int
        enum CodingKeys: String, CodingKey {
            case tasks
            case wallSeconds = "wall_seconds"
            case cpuSeconds = "cpu_seconds"
            case peakRSSBytes = "peak_rss_bytes"
            case retries
        }
    }

    /// Time and memory of a run: the only part of `report.json` that differs between runs.
    public struct Timing: Codable, Sendable {
        public var workers: Int
        public var wallSeconds: Double
        /// CPU time of the coordinator itself (planning, scheduling, progress, manifest).
        public var coordinatorCPUSeconds: Double
        public var peakWorkerRSSBytes: Int
        public var stages: [String: StageTiming]
        enum CodingKeys: String, CodingKey {
            case workers
            case wallSeconds = "wall_seconds"
            case coordinatorCPUSeconds = "coordinator_cpu_seconds"
            case peakWorkerRSSBytes = "peak_worker_rss_bytes"
            case stages
        }
    }

    /// What a run did, for the summary and `report.json`.
    public struct Summary: Codable, Sendable {
        public var format = "sluice.report.v1"
        public var configSHA256: String
        public var stages: [String]
        public var ingest: IngestReport
        public var docsParts: Int
        public var tokens: Int?
        public var tokensParts: Int?
        public var windows: Int?
        public var batches: Int?
        public var shards: Int?
        public var timing: Timing?

        enum CodingKeys: String, CodingKey {
            case format
            case configSHA256 = "config_sha256"
            case stages, ingest
            case docsParts = "docs_parts"
            case tokens
            case tokensParts = "tokens_parts"
            case windows, batches, shards, timing
        }
    }

    public let configuration: Configuration
    public let options: Options
    public let layout: OutputLayout
    /// Receives what the executor reports, on its queue.
    public var onEvent: @Sendable (ExecutorEvent) -> Void = { _ in }
    /// Receives the coordinator's own messages.
    public var log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(configuration: Configuration, options: Options) {
        self.configuration = configuration
        self.options = options
        layout = OutputLayout(root: options.outputOverride ?? configuration.resolvePath(configuration.output))
    }

    public var workerCount: Int {
        max(1, options.workersOverride ?? configuration.workers ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    public func run() throws -> Summary {
        let clock = DispatchTime.now().uptimeNanoseconds
        try prepareOutputDirectory()
        let swept = sweepTemporaryFiles()
        if swept > 0 { log("removed \(swept) temporary file(s) left by an interrupted run") }
        // Workers killed during this run (then retried) leave theirs too: sweep when it ends.
        defer { _ = sweepTemporaryFiles() }
        let plan = try Plan(configuration: configuration)
        try plan.record(configuration: configuration, layout: layout)
        let tokenize = configuration.tokenizer != nil
        let window = configuration.window != nil && configuration.tokenizer != nil
        try AtomicFileWriter.write(
            plan.graph(window: window).serializedBytes() + [0x0A], to: layout.workDirectory + "/plan.json")
        let workers = workerCount
        log(
            "plan: \(plan.ingest.count) ingest task(s) over \(plan.ingest.reduce(0) { $0 + $1.inputs.count }) input file(s), \(workers) worker(s) → \(layout.root)"
        )

        let executable = options.workerExecutable ?? Self.currentExecutable()
        let configPath = URL(fileURLWithPath: configuration.file).standardized.path
        func workerArguments(_ stage: String, part: Int?) -> [String] {
            ["worker", stage, configPath, "--out", layout.root, "--events"]
                + (part.map { ["--part", String($0)] } ?? [])
        }
        var tasks: [ExecutorTask] = []
        if tokenize {
            // The vocabulary, once, as a tiktoken rank file every tokenize task loads quickly
            // (learned from the count tasks' word counts with tokenizer.train).
            let train = configuration.tokenizer?.train != nil
            tasks.append(
                ExecutorTask(
                    id: "tokenizer", stage: "tokenizer", arguments: workerArguments("tokenizer", part: nil),
                    needs: train ? plan.ingest.map { "count/\(Plan.partName($0.part))" } : [],
                    inputs: train
                        ? "learns from _work/wordcounts/"
                        : "reads \(configuration.tokenizer?.vocab ?? "the vocabulary")"))
        }
        for task in plan.ingest {
            let name = Plan.partName(task.part)
            let inputs =
                task.inputs.count == 1 ? task.inputs[0].name : "\(task.inputs.count) inputs from \(task.inputs[0].name)"
            tasks.append(
                ExecutorTask(
                    id: "ingest/\(name)", stage: "ingest", arguments: workerArguments("ingest", part: task.part),
                    needs: [],
                    inputs: "reads \(inputs)", weight: task.inputs.reduce(0) { $0 + $1.byteCount }))
            if plan.train {
                tasks.append(
                    ExecutorTask(
                        id: "count/\(name)", stage: "count", arguments: workerArguments("count", part: task.part),
                        needs: ["ingest/\(name)"], inputs: "reads docs/\(name).lz4",
                        weight: task.inputs.reduce(0) { $0 + $1.byteCount }))
            }
            if tokenize {
                tasks.append(
                    ExecutorTask(
                        id: "tokenize/\(name)", stage: "tokenize",
                        arguments: workerArguments("tokenize", part: task.part),
                        needs: ["ingest/\(name)", "tokenizer"], inputs: "reads docs/\(name).lz4",
                        weight: task.inputs.reduce(0) { $0 + $1.byteCount }))
            }
        }
        if window {
            tasks.append(
                ExecutorTask(
                    id: "window", stage: "window",
                    arguments: workerArguments("window", part: nil) + (options.force ? ["--force"] : []),
                    needs: plan.ingest.map { "tokenize/\(Plan.partName($0.part))" }, inputs: "reads tokens/"))
        }
        let executor = LocalExecutor(
            executable: executable, workers: workers, retries: options.retriesOverride ?? configuration.retries,
            environment: options.workerEnvironment, onEvent: onEvent)
        var outcomes = try runExecutor(executor, tasks)

        let docs = try plan.ingest.map { task in
            try StableJSON.decode(DocsPart.Sidecar.self, from: layout.docsSidecar(task.part))
        }
        var report = IngestReport()
        for sidecar in docs { report.merge(sidecar.report) }
        var summary = Summary(
            configSHA256: configuration.resolvedSHA256, stages: ["ingest"], ingest: report, docsParts: docs.count)

        if tokenize {
            let tokenizer = try StableJSON.decode(TokenizeStage.TokenizerRecord.self, from: layout.workTokenizerRecord)
            let separator = configuration.tokenizer?.documentSeparator.flatMap { tokenizer.specialTokens[$0] }
            let tokens = try plan.ingest.map { task in
                try StableJSON.decode(TokenizeStage.Sidecar.self, from: layout.tokensSidecar(task.part))
            }
            summary.stages.append("tokenize")
            summary.tokensParts = tokens.count
            summary.tokens = TokenStream.length(of: tokens)

            if window {
                let record = try StableJSON.decode(WindowStage.Sidecar.self, from: layout.windowSidecar)
                let shardTasks = record.shards.map { span in
                    ExecutorTask(
                        id: "materialize/\(MaterializeStage.shardName(span.shard))", stage: "materialize",
                        arguments: workerArguments("materialize", part: span.shard), needs: ["window"],
                        inputs: "batches \(span.firstBatch)..<\(span.firstBatch + span.batchCount)",
                        weight: span.batchCount)
                }
                try AtomicFileWriter.write(
                    plan.graph(window: true, shards: record.shards.map { $0.shard }).serializedBytes() + [0x0A],
                    to: layout.workDirectory + "/plan.json")
                // The same executor: it knows the window task is done.
                outcomes = try runExecutor(executor, shardTasks)
                let shards = try record.shards.map { span in
                    guard
                        let shard = WindowStage.completedShard(
                            span.shard, window: record, layout: layout, hashing: false)
                    else {
                        throw PipelineError(
                            "\(MaterializeStage.shardName(span.shard)) does not match its completion record after its task finished; run again"
                        )
                    }
                    return shard
                }
                let tokenizerBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: layout.workTokenizer)))
                guard SHA256Hasher.hex(tokenizerBytes) == tokenizer.tiktokenSHA256 else {
                    throw PipelineError("\(layout.workTokenizer) changed during the run; run again")
                }
                try AtomicFileWriter.write(tokenizerBytes, to: layout.tokenizer)
                let manifest = Manifest.build(
                    configuration: configuration, tokenizer: tokenizer, separator: separator,
                    documents: report.documents, windowRecord: record, shards: shards)
                try AtomicFileWriter.write(manifest.serializedBytes() + [0x0A], to: layout.manifest)
                summary.stages += configuration.embedding == nil ? ["window"] : ["window", "materialize"]
                summary.windows = record.windows
                summary.batches = record.batches
                summary.shards = record.shards.count
            }
        }
        summary.timing = Self.timing(
            outcomes: Array(outcomes.values), workers: workers,
            wall: Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9)
        try AtomicFileWriter.write(try StableJSON.encode(summary), to: layout.report)
        return summary
    }

    /// Removes the hidden temporary files of writers whose process is gone.
    private func sweepTemporaryFiles() -> Int {
        [
            layout.root, layout.workDirectory, layout.docsDirectory, layout.tokensDirectory, layout.shardsDirectory,
            layout.tablesDirectory, layout.shardRecordsDirectory, layout.wordCountsDirectory,
        ].reduce(0) { $0 + AtomicFileWriter.removeStaleTemporaryFiles(in: $1) }
    }

    private func runExecutor(_ executor: LocalExecutor, _ tasks: [ExecutorTask]) throws -> [String: TaskOutcome] {
        do {
            return try executor.run(tasks)
        } catch let failure as ExecutorFailure {
            if let signal = failure.signal { throw RunInterrupted(message: failure.description, signal: signal) }
            throw PipelineError(failure.description)
        }
    }

    static func timing(outcomes: [TaskOutcome], workers: Int, wall: Double) -> Timing {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let coordinator =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        var stages: [String: StageTiming] = [:]
        for (stage, group) in Dictionary(grouping: outcomes, by: \.stage) {
            let started = group.map(\.started).min() ?? 0
            let finished = group.map(\.finished).max() ?? 0
            stages[stage] = StageTiming(
                tasks: group.count, wallSeconds: Self.rounded(finished - started),
                cpuSeconds: Self.rounded(group.reduce(0) { $0 + $1.cpuSeconds }),
                peakRSSBytes: group.map(\.peakRSSBytes).max() ?? 0, retries: group.reduce(0) { $0 + $1.attempts - 1 })
        }
        return Timing(
            workers: workers, wallSeconds: rounded(wall), coordinatorCPUSeconds: rounded(coordinator),
            peakWorkerRSSBytes: outcomes.map(\.peakRSSBytes).max() ?? 0, stages: stages)
    }

    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    /// This process's executable (workers are the same binary).
    static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs one task of the plan on its own — what each worker process (and a cluster
    /// scheduler's array job) does — writing exactly the files `run` writes for it. Finished
    /// tasks whose outputs still match their completion records are skipped.
    public func runTask(stage: String, part: Int?, events: WorkerEvents) throws {
        func requirePart() throws -> Int {
            guard let part else { throw PipelineError("sluice worker \(stage) needs --part N (see sluice plan)") }
            return part
        }
        func ingestTask(_ part: Int, _ plan: Plan) throws -> Plan.IngestTask {
            guard let task = plan.ingest.first(where: { $0.part == part }) else {
                throw PipelineError(
                    "part \(part) is not in the plan (\(plan.ingest.count) ingest task(s)); see sluice plan")
            }
            return task
        }
        try prepareOutputDirectory()
        switch stage {
        case "count":
            let part = try requirePart()
            let task = try ingestTask(part, try Plan.forTasks(configuration: configuration, layout: layout))
            guard let source = IngestStage.completed(task, layout: layout) else {
                throw PipelineError(
                    "count \(Plan.partName(part)) needs ingest \(Plan.partName(part)) first (its docs part is missing or does not match its sidecar)"
                )
            }
            if let done = TrainStage.completedCount(part: part, source: source, layout: layout) {
                return events.done(
                    "count \(Plan.partName(part)): already done, \(done.words) distinct words", skipped: true,
                    counters: ["bytes": source.documentBytes])
            }
            let sidecar = try TrainStage.count(part: part, source: source, layout: layout)
            events.done(
                "count \(Plan.partName(part)): \(sidecar.words) distinct words", skipped: false,
                counters: ["bytes": source.documentBytes])
        case "tokenizer":
            let settings = try requireTokenizer()
            if let train = settings.train {
                let plan = try Plan.forTasks(configuration: configuration, layout: layout)
                let counts = try plan.ingest.map { task in
                    do {
                        return try StableJSON.decode(
                            TrainStage.CountSidecar.self, from: layout.wordCountsSidecar(task.part))
                    } catch {
                        throw PipelineError(
                            "training needs every count task first; \(layout.wordCountsSidecar(task.part)) is missing or unreadable"
                        )
                    }
                }
                let names = train.specialTokenOrder(settings.specialTokens)
                let digest = TrainStage.digest(counts: counts, settings: train, specials: names)
                if let record = TokenizeStage.intactTokenizerRecord(layout: layout), record.trainedFrom == digest {
                    return events.done(
                        "tokenizer: already trained, \(record.ranks) ranks", skipped: true)
                }
                let encoder = try TrainStage.train(
                    counts: counts, settings: train, specialTokens: settings.specialTokens, layout: layout)
                let record = try TokenizeStage.recordTokenizer(encoder, layout: layout, trainedFrom: digest)
                return events.done(
                    "tokenizer: trained \(record.ranks) ranks (\(record.ranks - 256) merges) from \(counts.reduce(0) { $0 + $1.words }) part-distinct words",
                    skipped: false)
            }
            let encoder = try loadEncoder(settings)
            if let name = settings.documentSeparator, encoder.specialTokens[name] == nil {
                throw PipelineError(
                    "\(configuration.file): tokenizer.document_separator \"\(name)\" is not a special token of \(settings.vocab) (it has \(encoder.specialTokens.keys.sorted().map { "\"\($0)\"" }.joined(separator: ", ")))"
                )
            }
            let record = try TokenizeStage.recordTokenizer(encoder, layout: layout)
            events.done(
                "tokenizer: \(record.ranks) ranks, \(record.specialTokens.count) special token(s), id range \(record.idUpperBound)",
                skipped: false)
        case "ingest":
            let part = try requirePart()
            let task = try ingestTask(part, try Plan.forTasks(configuration: configuration, layout: layout))
            if let done = IngestStage.completed(task, layout: layout) {
                return events.done(
                    "ingest \(Plan.partName(part)): already done, \(done.documents) documents", skipped: true)
            }
            let sidecar = try IngestStage.run(task, settings: configuration.ingest, layout: layout) {
                documents, bytes in
                events.progress(["documents": documents, "bytes": bytes])
            }
            events.done(
                "ingest \(Plan.partName(part)): \(sidecar.documents) documents, \(sidecar.documentBytes) bytes, \(sidecar.report.skippedCount) skipped",
                skipped: false, counters: ["documents": sidecar.documents, "bytes": sidecar.documentBytes])
        case "tokenize":
            let part = try requirePart()
            let tokenizer = try requireTokenizer()
            let task = try ingestTask(part, try Plan.forTasks(configuration: configuration, layout: layout))
            guard let source = IngestStage.completed(task, layout: layout) else {
                throw PipelineError(
                    "tokenize \(Plan.partName(part)) needs ingest \(Plan.partName(part)) first (its docs part is missing or does not match its sidecar)"
                )
            }
            let (encoder, tokenizerSHA256) = try workerEncoder(tokenizer)
            if let done = TokenizeStage.completed(
                part: part, source: source, tokenizerSHA256: tokenizerSHA256, layout: layout)
            {
                return events.done(
                    "tokenize \(Plan.partName(part)): already done, \(done.tokens) tokens", skipped: true,
                    counters: ["bytes": source.documentBytes, "tokens": done.tokens])
            }
            let separator = tokenizer.documentSeparator.flatMap { encoder.specialTokens[$0] }
            let sidecar = try TokenizeStage.run(
                part: part, source: source, encoder: encoder, tokenizerSHA256: tokenizerSHA256, separator: separator,
                layout: layout
            ) { bytes, tokens in
                events.progress(["bytes": bytes, "tokens": tokens])
            }
            events.done(
                "tokenize \(Plan.partName(part)): \(sidecar.tokens) tokens", skipped: false,
                counters: ["bytes": source.documentBytes, "tokens": sidecar.tokens])
        case "window":
            let tokenizer = try requireTokenizer()
            guard configuration.window != nil else {
                throw PipelineError("\(configuration.file): no \"window\" section")
            }
            let plan = try Plan.forTasks(configuration: configuration, layout: layout)
            let tokens = try plan.ingest.map { task in
                do {
                    return try StableJSON.decode(TokenizeStage.Sidecar.self, from: layout.tokensSidecar(task.part))
                } catch {
                    throw PipelineError(
                        "the window task needs every tokenize task first; \(layout.tokensSidecar(task.part)) is missing or unreadable"
                    )
                }
            }
            if let done = WindowStage.completed(layout: layout, tokens: tokens) {
                return events.done(
                    "window: already done, \(done.windows) windows in \(done.shards.count) shard(s)", skipped: true)
            }
            let (encoder, _) = try workerEncoder(tokenizer)
            let record = try WindowStage.run(
                configuration: configuration, idUpperBound: encoder.idUpperBound, tokens: tokens, layout: layout,
                force: options.force, log: events.log)
            events.done(
                "window: \(record.windows) windows, \(record.batches) batches in \(record.shards.count) shard(s)",
                skipped: false, counters: ["windows": record.windows])
        case "materialize":
            let shard = try requirePart()
            let record: WindowStage.Sidecar
            do {
                record = try StableJSON.decode(WindowStage.Sidecar.self, from: layout.windowSidecar)
            } catch {
                throw PipelineError(
                    "materialize needs the window task first; \(layout.windowSidecar) is missing or unreadable")
            }
            if let done = WindowStage.completedShard(shard, window: record, layout: layout) {
                return events.done(
                    "materialize \(MaterializeStage.shardName(shard)): already done", skipped: true,
                    counters: ["bytes": done.contentBytes])
            }
            let made = try WindowStage.materialize(
                shard: shard, configuration: configuration, window: record, layout: layout)
            events.done(
                "materialize \(MaterializeStage.shardName(shard)): \(made.batchCount) batches, \(made.contentBytes) bytes",
                skipped: false, counters: ["bytes": made.contentBytes])
        default:
            throw PipelineError(
                "unknown stage \"\(stage)\"; workers run ingest, count, tokenizer, tokenize, window or materialize tasks"
            )
        }
    }

    /// The run's recorded tokenizer (fast to load), or the config's when a worker runs on its own.
    private func workerEncoder(_ settings: TokenizerSettings) throws -> (BPEEncoder, String) {
        if let recorded = TokenizeStage.recordedTokenizer(layout: layout) { return recorded }
        if settings.train != nil {
            throw PipelineError(
                "the vocabulary is trained by the tokenizer task, which has not run (or its output is damaged): run sluice worker tokenizer first"
            )
        }
        let encoder = try loadEncoder(settings)
        return (encoder, TokenizeStage.identity(of: encoder).record.sha256)
    }

    private func requireTokenizer() throws -> TokenizerSettings {
        guard let tokenizer = configuration.tokenizer else {
            throw PipelineError("\(configuration.file): no \"tokenizer\" section")
        }
        return tokenizer
    }

    private func loadEncoder(_ settings: TokenizerSettings) throws -> BPEEncoder {
        do {
            return try BPEEncoder.load(
                vocab: configuration.resolvePath(settings.vocab),
                merges: settings.merges.map(configuration.resolvePath),
                specialTokens: settings.specialTokens)
        } catch {
            throw PipelineError("tokenizer: \(error)")
        }
    }

    /// Record of which config made this directory: a different config never mixes its work in.
    struct RunRecord: Codable, Equatable {
        var format = "sluice.run.v1"
        var configSHA256: String
        enum CodingKeys: String, CodingKey {
            case format
            case configSHA256 = "config_sha256"
        }
    }

    private func prepareOutputDirectory() throws {
        let fileManager = FileManager.default
        let record = RunRecord(configSHA256: configuration.resolvedSHA256)
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: layout.root, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw PipelineError("\(layout.root) exists and is not a directory; choose another output")
            }
            let contents = (try? fileManager.contentsOfDirectory(atPath: layout.root)) ?? []
            // Only `_work` and no record yet: another worker of this run is setting it up.
            if !contents.isEmpty && contents != ["_work"] {
                guard let existing = try? StableJSON.decode(RunRecord.self, from: layout.runRecord) else {
                    throw PipelineError(
                        "\(layout.root) is not empty and was not made by sluice (no _work/run.json); sluice only writes into directories it created — choose another output or empty it"
                    )
                }
                if existing != record {
                    guard options.force else {
                        throw PipelineError(
                            "\(layout.root) holds the output of a different config (config SHA-256 \(existing.configSHA256.prefix(12))…, now \(record.configSHA256.prefix(12))…); its work cannot be reused. Run with --force to start over, or choose another output"
                        )
                    }
                    for entry in [
                        "docs", "tokens", "shards", "tables", "_work", "report.json", "manifest.json",
                        "tokenizer.tiktoken",
                    ] {
                        try? fileManager.removeItem(atPath: layout.root + "/" + entry)
                    }
                }
            }
        }
        // The record first, so a directory holding our files always says which config made them.
        try fileManager.createDirectory(atPath: layout.workDirectory, withIntermediateDirectories: true)
        try AtomicFileWriter.write(try StableJSON.encode(record), to: layout.runRecord)
        for directory in [layout.docsDirectory, layout.tokensDirectory] {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
    }
}

/// SIGINT or SIGTERM stopped the run; the output is resumable.
public struct RunInterrupted: Error, CustomStringConvertible {
    public var message: String
    public var signal: Int32
    public var description: String { message }
}
