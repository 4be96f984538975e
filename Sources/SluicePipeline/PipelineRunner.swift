import Dispatch
import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest
import Synchronization

/// Runs a config's stages into its output directory, resuming finished tasks.
///
/// Tasks run in this process on up to `workers` threads; each writes only its own files, so
/// the output does not depend on the worker count or on timing. (The multi-process executor
/// of DESIGN.md replaces this loop; the task functions and files stay the same.)
public struct PipelineRunner {
    public struct Options: Sendable {
        public var outputOverride: String?
        public var workersOverride: Int?
        /// Exit non-zero when anything was skipped.
        public var strict = false
        /// Start over in an output directory made with a different config.
        public var force = false
        public init() {}
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

        enum CodingKeys: String, CodingKey {
            case format
            case configSHA256 = "config_sha256"
            case stages, ingest
            case docsParts = "docs_parts"
            case tokens
            case tokensParts = "tokens_parts"
            case windows, batches, shards
        }
    }

    public let configuration: Configuration
    public let options: Options
    public let layout: OutputLayout
    /// Receives one line per finished task and stage.
    public var log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(configuration: Configuration, options: Options) {
        self.configuration = configuration
        self.options = options
        layout = OutputLayout(root: options.outputOverride ?? configuration.resolvePath(configuration.output))
    }

    public func run() throws -> Summary {
        let encoder = try configuration.tokenizer.map(loadEncoder)
        let separator: TokenID? = try configuration.tokenizer.flatMap { settings in
            guard let name = settings.documentSeparator else { return nil }
            guard let id = encoder?.specialTokens[name] else {
                throw PipelineError(
                    "\(configuration.file): tokenizer.document_separator \"\(name)\" is not a special token")
            }
            return id
        }
        try prepareOutputDirectory()
        var swept = 0
        for directory in [
            layout.root, layout.docsDirectory, layout.tokensDirectory, layout.shardsDirectory, layout.tablesDirectory,
        ] {
            swept += AtomicFileWriter.removeStaleTemporaryFiles(in: directory)
        }
        if swept > 0 { log("removed \(swept) temporary file(s) left by an interrupted run") }
        let plan = try Plan(configuration: configuration)
        try AtomicFileWriter.write(
            Array((plan.graph(window: configuration.window != nil).serialized() + "\n").utf8),
            to: layout.workDirectory + "/plan.json")
        let workers = max(
            1, options.workersOverride ?? configuration.workers ?? ProcessInfo.processInfo.activeProcessorCount)
        log(
            "plan: \(plan.ingest.count) ingest task(s) over \(plan.ingest.reduce(0) { $0 + $1.inputs.count }) input file(s), \(workers) worker(s) → \(layout.root)"
        )

        let settings = configuration.ingest
        let layout = self.layout
        let log = self.log
        let docs = try Self.parallel(plan.ingest, workers: workers) { task in
            if let done = IngestStage.completed(task, layout: layout) {
                log("ingest \(Plan.partName(task.part)): already done, \(done.documents) documents")
                return done
            }
            let sidecar = try IngestStage.run(task, settings: settings, layout: layout)
            log(
                "ingest \(Plan.partName(task.part)): \(sidecar.documents) documents, \(sidecar.documentBytes) bytes, \(sidecar.report.skippedCount) skipped"
            )
            return sidecar
        }
        var report = IngestReport()
        for sidecar in docs { report.merge(sidecar.report) }
        var summary = Summary(
            configSHA256: configuration.resolvedSHA256, stages: ["ingest"], ingest: report, docsParts: docs.count)

        if let encoder {
            let tokens = try Self.parallel(Array(docs.enumerated()), workers: workers) { part, source in
                if let done = TokenizeStage.completed(part: part, source: source, layout: layout) {
                    log("tokenize \(Plan.partName(part)): already done, \(done.tokens) tokens")
                    return done
                }
                let sidecar = try TokenizeStage.run(
                    part: part, source: source, encoder: encoder, separator: separator, layout: layout)
                log("tokenize \(Plan.partName(part)): \(sidecar.tokens) tokens")
                return sidecar
            }
            summary.stages.append("tokenize")
            summary.tokensParts = tokens.count
            summary.tokens = TokenStream.length(of: tokens)

            if configuration.window != nil {
                let result = try WindowStage.run(
                    configuration: configuration, encoder: encoder, tokens: tokens, layout: layout, workers: workers,
                    force: options.force, log: log)
                let tokenizerBytes = Manifest.tiktokenFile(encoder.vocabulary)
                try AtomicFileWriter.write(tokenizerBytes, to: layout.tokenizer)
                let manifest = Manifest.build(
                    configuration: configuration, encoder: encoder, tokenizerSHA256: SHA256Hasher.hex(tokenizerBytes),
                    separator: separator, documents: report.documents, result: result)
                try AtomicFileWriter.write(Array((manifest.serialized() + "\n").utf8), to: layout.manifest)
                summary.stages += configuration.embedding == nil ? ["window"] : ["window", "materialize"]
                summary.windows = result.plan.windowCount
                summary.batches = result.plan.batchCount
                summary.shards = result.shards.count
            }
        }
        try AtomicFileWriter.write(try StableJSON.encode(summary), to: layout.report)
        return summary
    }

    /// Runs one task of the plan on its own — what `sluice worker` (and a cluster scheduler's
    /// array job) does — writing exactly the files `run` writes for it.
    public func runTask(stage: String, part: Int) throws -> String {
        let plan = try Plan(configuration: configuration)
        guard let task = plan.ingest.first(where: { $0.part == part }) else {
            throw PipelineError(
                "part \(part) is not in the plan (\(plan.ingest.count) ingest task(s)); see sluice plan")
        }
        try prepareOutputDirectory()
        switch stage {
        case "ingest":
            if let done = IngestStage.completed(task, layout: layout) {
                return "ingest \(Plan.partName(part)): already done, \(done.documents) documents"
            }
            let sidecar = try IngestStage.run(task, settings: configuration.ingest, layout: layout)
            return "ingest \(Plan.partName(part)): \(sidecar.documents) documents"
        case "tokenize":
            guard let tokenizer = configuration.tokenizer else {
                throw PipelineError("\(configuration.file): no \"tokenizer\" section")
            }
            guard let source = IngestStage.completed(task, layout: layout) else {
                throw PipelineError(
                    "tokenize \(Plan.partName(part)) needs ingest \(Plan.partName(part)) first (its docs part is missing or does not match its sidecar)"
                )
            }
            if let done = TokenizeStage.completed(part: part, source: source, layout: layout) {
                return "tokenize \(Plan.partName(part)): already done, \(done.tokens) tokens"
            }
            let encoder = try loadEncoder(tokenizer)
            let separator = tokenizer.documentSeparator.flatMap { encoder.specialTokens[$0] }
            let sidecar = try TokenizeStage.run(
                part: part, source: source, encoder: encoder, separator: separator, layout: layout)
            return "tokenize \(Plan.partName(part)): \(sidecar.tokens) tokens"
        default:
            throw PipelineError("unknown stage \"\(stage)\"; workers run ingest or tokenize tasks")
        }
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

    /// Runs `body` over `items` on up to `workers` threads; results in item order. After a
    /// failure no new item starts; the first error in item order is rethrown once every
    /// started item has finished. Items are taken in index order, so every item before the
    /// first failure has a result.
    static func parallel<Item: Sendable, Result: Sendable>(
        _ items: [Item], workers: Int, _ body: @Sendable (Item) throws -> Result
    ) throws -> [Result] {
        let next = Atomic<Int>(0)
        let failed = Atomic<Bool>(false)
        let outcomes = Mutex<[Int: Swift.Result<Result, any Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: min(workers, max(1, items.count))) { _ in
            while !failed.load(ordering: .relaxed) {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < items.count else { return }
                let outcome = Swift.Result { try body(items[index]) }
                outcomes.withLock { $0[index] = outcome }
                if case .failure = outcome { failed.store(true, ordering: .relaxed) }
            }
        }
        return try outcomes.withLock { all in
            try items.indices.map { index in
                guard let outcome = all[index] else { throw PipelineError("internal: task \(index) did not run") }
                return try outcome.get()
            }
        }
    }
}
