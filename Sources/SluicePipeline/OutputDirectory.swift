import Foundation
import SluiceConfig
import SluiceIO

/// `_work/run.json`: marks a directory as made by Sluice, and tells every worker of the run
/// which config to load — the config's text as the coordinator read it, so a worker (local or
/// on a cluster node) sees exactly the same settings even if the file changes meanwhile.
public struct RunRecord: Codable, Sendable {
    public static let formatName = "sluice.run.v2"
    public var format = RunRecord.formatName
    /// The config file, for messages.
    public var configFile: String
    /// Where the config's relative paths resolve.
    public var baseDirectory: String
    /// The config file's text.
    public var config: String
    /// `--force`: the window task makes tables and shards even when they look too big for the disk.
    public var allowLargeOutput: Bool

    enum CodingKeys: String, CodingKey {
        case format
        case configFile = "config_file"
        case baseDirectory = "base_directory"
        case config
        case allowLargeOutput = "allow_large_output"
    }

    public init(configuration: Configuration, configText: [UInt8], allowLargeOutput: Bool) {
        configFile = URL(fileURLWithPath: configuration.file).standardized.path
        baseDirectory = configuration.baseDirectory
        config = String(decoding: configText, as: UTF8.self)
        self.allowLargeOutput = allowLargeOutput
    }

    /// The config as the run recorded it.
    public func configuration() throws -> Configuration {
        try Configuration.decode(Array(config.utf8), file: configFile, baseDirectory: baseDirectory)
    }

    public static func load(_ layout: OutputLayout) throws -> RunRecord {
        let record: RunRecord
        do {
            record = try StableJSON.decode(RunRecord.self, from: layout.runRecord)
        } catch {
            throw PipelineError(
                .missingInput,
                "\(layout.runRecord) is missing or unreadable: \(layout.root) is not prepared for workers — run sluice run, or sluice plan CONFIG --out \(layout.root) --write",
                path: layout.runRecord)
        }
        guard record.format == formatName else {
            throw PipelineError(
                .damagedOutput,
                "\(layout.runRecord): run record format \"\(record.format)\", this sluice reads \"\(formatName)\"; run sluice run again to rewrite it",
                path: layout.runRecord)
        }
        return record
    }
}

/// What only a coordinator does to an output directory (`sluice run`, `sluice plan --write`):
/// claim it, record the run, sweep what killed writers left, and remove outputs of earlier
/// configs that no task of this plan writes — so a rerun with another config ends exactly as a
/// fresh run would, while every task whose identity is unchanged is reused.
public struct OutputDirectory {
    public let layout: OutputLayout

    public init(layout: OutputLayout) { self.layout = layout }

    /// Entries Sluice makes at the top of an output directory (what `--force` removes).
    static let entries = [
        "docs", "tokens", "shards", "tables", "_work", "report.json", "manifest.json", "tokenizer.tiktoken",
        "tokenizer.words.txt",
    ]

    /// Makes `layout.root` this run's: refuses a non-empty directory Sluice did not make; with
    /// `startOver`, removes everything an earlier run left. Then writes the run record and plan.
    public func prepare(
        configuration: Configuration, configText: [UInt8], plan: Plan, startOver: Bool, allowLargeOutput: Bool,
        encoder: PlanFileEncoder = PlanFileEncoder()
    ) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: layout.root, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw PipelineError(.config, "\(layout.root) exists and is not a directory; choose another output")
            }
            let contents = (try? fileManager.contentsOfDirectory(atPath: layout.root)) ?? []
            if !contents.isEmpty && !fileManager.fileExists(atPath: layout.runRecord) {
                throw PipelineError(
                    .config,
                    "\(layout.root) is not empty and was not made by sluice (no _work/run.json); sluice only writes into directories it created — choose another output or empty it"
                )
            }
            if startOver {
                for entry in Self.entries { try? fileManager.removeItem(atPath: layout.path(entry)) }
            }
        }
        do {
            for directory in [layout.workDirectory, layout.docsDirectory] {
                try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            if configuration.tokenizer != nil {
                try fileManager.createDirectory(atPath: layout.tokensDirectory, withIntermediateDirectories: true)
            }
        } catch {
            throw PipelineError.classify(error)
        }
        // The record first, so a directory holding our files always says it is ours.
        let record = RunRecord(configuration: configuration, configText: configText, allowLargeOutput: allowLargeOutput)
        try AtomicFileWriter.write(try StableJSON.encode(record), to: layout.runRecord)
        removeUnplanned(plan)
        try plan.write(to: layout, encoder: encoder)
    }

    /// Removes what an earlier run made that this plan does not: parts beyond its part count,
    /// tables or window files of a section the config no longer has — and the manifest and
    /// report, which describe a finished run and are rewritten by this run's finalize task.
    func removeUnplanned(_ plan: Plan) {
        let fileManager = FileManager.default
        let planned = Set(plan.tasks.flatMap(\.writes))
        for name in ["manifest.json", "report.json", "tokenizer.tiktoken", "tokenizer.words.txt"] {
            try? fileManager.removeItem(atPath: layout.path(name))
        }
        for directory in ["docs", "tokens", "tables", "_work/wordcounts"] {
            for entry in (try? fileManager.contentsOfDirectory(atPath: layout.path(directory))) ?? []
            where !entry.hasPrefix(".") && !planned.contains(directory + "/" + entry) {
                try? fileManager.removeItem(atPath: layout.path(directory + "/" + entry))
            }
        }
        let relative = OutputLayout.relative
        for name in [
            relative.streamFile, relative.windowsFile, relative.windowSidecar, relative.workTokenizer,
            relative.workTokenizerRecord,
        ] where !planned.contains(name) {
            try? fileManager.removeItem(atPath: layout.path(name))
        }
        if plan.expansion == nil {
            try? fileManager.removeItem(atPath: layout.shardsDirectory)
            try? fileManager.removeItem(atPath: layout.shardRecordsDirectory)
        }
    }

    /// Removes the hidden temporary files of writers whose process is gone.
    public func sweepTemporaryFiles() -> Int {
        [
            layout.root, layout.workDirectory, layout.docsDirectory, layout.tokensDirectory, layout.shardsDirectory,
            layout.tablesDirectory, layout.shardRecordsDirectory, layout.wordCountsDirectory,
        ].reduce(0) { $0 + AtomicFileWriter.removeStaleTemporaryFiles(in: $1) }
    }
}
