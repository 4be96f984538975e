import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

/// What a run made, for the summary and `report.json`.
public struct RunReport: Codable, Sendable {
    public var format = "sluice.report.v1"
    /// SHA-256 of the config's output-defining part (what the manifest holds).
    public var configSHA256: String
    public var stages: [String]
    public var ingest: IngestReport
    public var docsParts: Int
    public var tokens: Int?
    public var tokensParts: Int?
    public var windows: Int?
    public var batches: Int?
    public var shards: Int?
    /// Word-level runs: the vocabulary and its out-of-vocabulary rate.
    public var vocabulary: VocabularyReport?
    /// Added by the coordinator that ran the tasks: the only part of the output that differs
    /// between runs.
    public var timing: RunTiming?

    enum CodingKeys: String, CodingKey {
        case format
        case configSHA256 = "config_sha256"
        case stages, ingest
        case docsParts = "docs_parts"
        case tokens
        case tokensParts = "tokens_parts"
        case windows, batches, shards, timing, vocabulary
    }
}

/// A word-level run's vocabulary: its size and what fell outside it (became `<|unk|>`), and,
/// with `embedding.vectors`, how much of it the vectors cover.
public struct VocabularyReport: Codable, Sendable {
    public var kind = "words"
    public var size: Int
    public var tokens: Int
    /// Tokens that are `<|unk|>` because their piece is not in the vocabulary.
    public var unknownTokens: Int
    /// Distinct pieces that became `<|unk|>`.
    public var unknownPieces: Int
    /// unknown_tokens / tokens (separators not counted).
    public var unknownRate: Double
    /// The first (in code point order) unknown pieces, for a look.
    public var unknownExamples: [String]
    public var vectors: VectorCoverage?

    init(words record: TokenizerStage.Record, parts: [TokenizeStage.Sidecar]) {
        size = record.ranks
        let separators = parts.reduce(0) { total, part in total + (part.separatorID == nil ? 0 : part.documents) }
        tokens = parts.reduce(0) { $0 + $1.tokens } - separators
        unknownTokens = parts.reduce(0) { $0 + ($1.unknownTokens ?? 0) }
        var distinct = Set<String>()
        for part in parts { distinct.formUnion(part.unknownPieces ?? []) }
        unknownPieces = distinct.count
        unknownRate = tokens == 0 ? 0 : Double(unknownTokens) / Double(tokens)
        unknownExamples = Array(distinct.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.prefix(20))
    }

    enum CodingKeys: String, CodingKey {
        case kind, size, tokens
        case unknownTokens = "unknown_tokens"
        case unknownPieces = "unknown_pieces"
        case unknownRate = "unknown_rate"
        case unknownExamples = "unknown_examples"
        case vectors
    }
}

/// How much of a word vocabulary the pretrained vectors cover (`embedding.vectors`).
public struct VectorCoverage: Codable, Sendable, Equatable {
    public var file: String
    /// Rows of the token table taken from the vectors.
    public var rowsFromVectors: Int
    /// Rows without a vector (torch rows or zeros, per missing_vectors).
    public var rowsWithoutVector: Int
    /// Tokens of the training stream whose row has no vector (separators included).
    public var tokensWithoutVector: Int
    public var streamTokens: Int

    enum CodingKeys: String, CodingKey {
        case file
        case rowsFromVectors = "rows_from_vectors"
        case rowsWithoutVector = "rows_without_vector"
        case tokensWithoutVector = "tokens_without_vector"
        case streamTokens = "stream_tokens"
    }
}

/// The finalize task, last of every run: checks that every task's completion record is there
/// and whole, then writes `tokenizer.tiktoken`, `manifest.json` and `report.json` from those
/// records. Shards are checked by size, not re-hashed: each materialize task hashed its shard as
/// it wrote it (or before reusing it), and on large outputs re-hashing would cost minutes.
/// It always runs — it is cheap and its outputs say what the whole run holds.
public enum FinalizeStage: StageRunner {
    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let configuration = context.configuration
        let layout = context.layout
        let ingest = task.needs.filter { $0.stage == .ingest }
        let docs = try ingest.map { id in
            try IngestStage.source(part: id.index ?? 0, for: task.id, layout: layout, hashing: false)
        }
        var summary = IngestReport()
        for sidecar in docs { summary.merge(sidecar.report) }
        var report = RunReport(
            configSHA256: configuration.outputDefiningSHA256, stages: ["ingest"], ingest: summary,
            docsParts: docs.count)

        let tokenize = task.needs.filter { $0.stage == .tokenize }
        if configuration.tokenizer != nil {
            let tokenizer = try TokenizerStage.record(for: task.id, layout: layout)
            let tokens = try tokenize.map { id in
                try Completion.upstream(
                    TokenizeStage.Sidecar.self, layout.tokensSidecar(id.index ?? 0), from: id, for: task.id)
            }
            guard tokens.allSatisfy({ $0.tokenizerSHA256 == tokenizer.sha256 }) else {
                throw PipelineError(
                    .damagedOutput,
                    "tokens parts were made by another tokenizer than \(layout.workTokenizer); run again")
            }
            let rankFile = try Completion.readVerified(
                layout.workTokenizerFile(words: tokenizer.isWords), sha256: tokenizer.tiktokenSHA256)
            try AtomicFileWriter.write(rankFile, to: layout.tokenizerFile(words: tokenizer.isWords))
            report.stages.append("tokenize")
            if tokenizer.isWords {
                report.vocabulary = VocabularyReport(words: tokenizer, parts: tokens)
            }
            report.tokensParts = tokens.count
            report.tokens = TokenStream.length(of: tokens)

            if task.needs.contains(.window) {
                let window = try Completion.upstream(
                    WindowStage.Sidecar.self, layout.windowSidecar, from: .window, for: task.id)
                guard window.sources == tokens.map(\.sha256) else {
                    throw PipelineError(
                        .damagedOutput, "\(layout.windowSidecar) was made from other tokens parts; run again")
                }
                let all = try window.allShards.map { span in
                    guard
                        let shard = MaterializeStage.completed(
                            span.shard, window: window, layout: layout, hashing: false)
                    else {
                        throw PipelineError(
                            .damagedOutput,
                            "\(TaskID(.materialize, span.shard)) is not done: \(layout.shardRecord(span.shard)) is missing or does not match \(layout.windowSidecar); run again",
                            path: layout.shardRecord(span.shard))
                    }
                    return shard
                }
                let separator = configuration.tokenizer?.documentSeparator.flatMap { tokenizer.specialTokens[$0] }
                let shards = Array(all.prefix(window.shards.count))
                let validationShards = Array(all.dropFirst(window.shards.count))
                let manifest = Manifest.build(
                    configuration: configuration, tokenizer: tokenizer, separator: separator,
                    documents: summary.documents - (window.validation?.documents ?? 0), windowRecord: window,
                    shards: shards, validationShards: validationShards, partialInputs: summary.partialInputs)
                try AtomicFileWriter.write(manifest.serializedBytes() + [0x0A], to: layout.manifest)
                report.stages += configuration.embedding == nil ? ["window"] : ["window", "materialize"]
                report.vocabulary?.vectors = window.vectorCoverage
                report.windows = window.windows
                report.batches = window.batches
                report.shards = all.count
            }
        }
        try AtomicFileWriter.write(try StableJSON.encode(report), to: layout.report)
        return TaskReport(
            "finalize: " + (report.shards.map { "manifest of \($0) shard(s), " } ?? "")
                + "report of \(docs.count) part(s)",
            reused: false)
    }
}
