import Foundation

/// Where everything lives under the output directory (docs/FORMATS.md). Each name is written
/// once: `OutputLayout.relative` gives the names a plan lists, a rooted layout the paths to open.
public struct OutputLayout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// Names relative to the output directory (what `TaskSpec.writes` lists).
    public static let relative = OutputLayout(root: "")

    public func path(_ name: String) -> String { root.isEmpty ? name : root + "/" + name }

    public var docsDirectory: String { path("docs") }
    public var tokensDirectory: String { path("tokens") }
    public var workDirectory: String { path("_work") }
    public var shardsDirectory: String { path("shards") }
    public var tablesDirectory: String { path("tables") }

    /// Which config made this directory, and how its workers load it.
    public var runRecord: String { path("_work/run.json") }
    /// The task graph: what every executor runs and `sluice worker --task` reads its task from.
    public var planFile: String { path("_work/plan.json") }
    public var report: String { path("report.json") }
    /// Job scripts, task lists and the record of submitted jobs of Slurm runs.
    public var slurmDirectory: String { path("_work/slurm") }
    public var slurmJobsRecord: String { path("_work/slurm/jobs.json") }
    /// Per-task worker messages and errors of Slurm runs (`<stage>-<unit>.events` / `.log`).
    public var logsDirectory: String { path("_work/logs") }
    public var manifest: String { path("manifest.json") }
    public var tokenizer: String { path("tokenizer.tiktoken") }
    /// The run's tokenizer as a tiktoken rank file plus its special tokens, for the workers.
    public var workTokenizer: String { path("_work/tokenizer.tiktoken") }
    public var workTokenizerRecord: String { path("_work/tokenizer.json") }
    /// A word-level run's vocabulary, one token per line in id order (`tokenizer.words`).
    public var wordVocabulary: String { path("tokenizer.words.txt") }
    public var workWordVocabulary: String { path("_work/tokenizer.words.txt") }
    /// The run's vocabulary file, for the workers and in the output: a rank file, or words.
    public func workTokenizerFile(words: Bool) -> String { words ? workWordVocabulary : workTokenizer }
    public func tokenizerFile(words: Bool) -> String { words ? wordVocabulary : tokenizer }
    public var wordCountsDirectory: String { path("_work/wordcounts") }
    public func wordCounts(_ part: Int) -> String { path("_work/wordcounts/\(Self.partName(part)).counts") }
    public func wordCountsSidecar(_ part: Int) -> String { path("_work/wordcounts/\(Self.partName(part)).json") }
    /// The window task's completion record.
    public var windowSidecar: String { path("_work/window.json") }
    /// The global token stream as flat little-endian ids.
    public var streamFile: String { path("_work/stream.ids") }
    /// Window starts in sample order, Int64 little-endian.
    public var windowsFile: String { path("_work/windows.i64") }
    public func table(_ name: String) -> String { path("tables/\(name).safetensors") }
    public var shardRecordsDirectory: String { path("_work/shards") }
    public func shardRecord(_ shard: Int) -> String { path("_work/shards/\(Self.shardBaseName(shard)).json") }
    public func shard(_ shard: Int) -> String { path("shards/\(Self.shardFileName(shard))") }
    /// `shards.kind` "tokens": shard `shard` of the token stream, one LZ4 frame of 64 KiB blocks.
    public func tokenShard(_ shard: Int) -> String { path("shards/\(Self.tokenShardFileName(shard))") }
    /// `shards.kind` "tokens": where each document starts in the stream (UInt64 LE each).
    public var documentIndex: String { path("shards/documents.idx") }

    public func docsPart(_ part: Int) -> String { path("docs/\(Self.partName(part)).lz4") }
    public func docsSidecar(_ part: Int) -> String { path("docs/\(Self.partName(part)).json") }
    public func tokensPart(_ part: Int) -> String { path("tokens/\(Self.partName(part)).lz4") }
    public func tokensDocumentLengths(_ part: Int) -> String { path("tokens/\(Self.partName(part)).doc-tokens.lz4") }
    public func tokensSidecar(_ part: Int) -> String { path("tokens/\(Self.partName(part)).json") }

    /// `part-00003`.
    public static func partName(_ part: Int) -> String { "part-" + TaskID.fiveDigits(part) }
    /// `shard-00002`.
    public static func shardBaseName(_ shard: Int) -> String { "shard-" + TaskID.fiveDigits(shard) }
    /// `shard-00002.safetensors.lz4`.
    public static func shardFileName(_ shard: Int) -> String { shardBaseName(shard) + ".safetensors.lz4" }
    /// `tokens-00002.lz4`.
    public static func tokenShardFileName(_ shard: Int) -> String { "tokens-" + TaskID.fiveDigits(shard) + ".lz4" }
}

/// Deterministic JSON for everything Sluice writes: sorted keys, 2-space indent, final newline.
public enum StableJSON {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value)) + [0x0A]
    }

    public static func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
