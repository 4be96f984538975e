import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

/// `OUT/manifest.json`: what a trainer needs to trust and read the output — the resolved
/// config and its hash, the tokenizer, window and embedding settings, totals, and every shard
/// and table with its size and SHA-256. No timestamps: identical runs give identical bytes.
public enum Manifest {
    public static let formatName = "sluice.manifest.v1"

    static func string(_ text: String) -> JSONNode { JSONNode(.string(Array(text.utf8))) }
    static func int(_ value: Int) -> JSONNode { JSONNode(.integer(Int64(value))) }
    /// A seed in its unsigned form, as `torch.initial_seed()` prints it (`Seed`).
    static func seed(_ bits: UInt64) -> JSONNode {
        JSONNode(Int64(exactly: bits).map { .integer($0) } ?? .unsignedInteger(bits))
    }

    static func build(
        configuration: Configuration, tokenizer: TokenizerStage.Record, separator: TokenID?,
        documents: Int, windowRecord: WindowStage.Sidecar, shards: [MaterializeStage.ShardRecord],
        validationShards: [MaterializeStage.ShardRecord] = [], partialInputs: [IngestReport.PartialInput] = []
    ) -> JSONNode {
        let window = configuration.window
        let special = tokenizer.specialTokens.sorted { $0.key < $1.key }.map { ($0.key, int(Int($0.value))) }
        var embedding = JSONNode(.null)
        if let settings = configuration.embedding, windowRecord.tables.count == 2 {
            embedding = JSONNode(
                .object([
                    ("vocab_size", int(windowRecord.tables[0].shape[0])),
                    ("context_length", int(windowRecord.tables[1].shape[0])),
                    ("output_dim", int(settings.outputDim)),
                    ("init", string(settings.initializer)),
                    (
                        "vectors",
                        settings.vectors.map { string(URL(fileURLWithPath: $0).lastPathComponent) } ?? JSONNode(.null)
                    ),
                    ("missing_vectors", settings.vectors == nil ? JSONNode(.null) : string(settings.missingVectors)),
                    ("seed", seed(settings.seed)),
                    ("torch_kernel", string(settings.torchKernel)),
                    ("dtype", string(settings.dtype)),
                    (
                        "tables",
                        JSONNode(
                            .array(
                                windowRecord.tables.map { table in
                                    JSONNode(
                                        .object([
                                            ("name", string(table.name)), ("file", string(table.file)),
                                            ("shape", JSONNode(.array(table.shape.map(int)))),
                                            ("sha256", string(table.sha256)),
                                        ]))
                                }))
                    ),
                ]))
        }
        let shardBytes = shards.reduce(0) { $0 + $1.fileBytes }
        return JSONNode(
            .object([
                ("format", string(formatName)),
                ("config_sha256", string(configuration.outputDefiningSHA256)),
                ("config", configuration.outputDefining),
                (
                    "tokenizer",
                    JSONNode(
                        .object([
                            ("kind", string(tokenizer.isWords ? "words" : "bpe")),
                            ("file", string(tokenizer.isWords ? "tokenizer.words.txt" : "tokenizer.tiktoken")),
                            ("sha256", string(tokenizer.tiktokenSHA256)),
                            ("lowercase", JSONNode(.bool(tokenizer.lowercase ?? false))),
                            ("ranks", int(tokenizer.ranks)),
                            ("id_upper_bound", int(tokenizer.idUpperBound)),
                            ("special_tokens", JSONNode(.object(special))),
                            ("document_separator", separator.map { int(Int($0)) } ?? JSONNode(.null)),
                        ]))
                ),
                (
                    "window",
                    JSONNode(
                        .object([
                            ("max_length", int(window?.maxLength ?? 0)),
                            ("stride", int(window?.stride ?? 0)),
                            ("batch_size", int(window?.batchSize ?? 0)),
                            ("shuffle", string(window.map { "\($0.shuffle)" } ?? "none")),
                            ("seed", seed(window?.seed ?? 0)),
                            ("drop_last", JSONNode(.bool(window?.dropLast ?? true))),
                            ("cross_document", JSONNode(.bool(window?.crossDocument ?? true))),
                        ]))
                ),
                ("embedding", embedding),
                (
                    "totals",
                    JSONNode(
                        .object([
                            ("documents", int(documents)),
                            ("tokens", int(windowRecord.streamLength)),
                            ("windows", int(windowRecord.windows)),
                            ("batches", int(windowRecord.batches)),
                            ("shard_bytes", int(shardBytes)),
                        ]))
                ),
                ("partial_inputs", partialList(partialInputs)),
                ("shards_kind", string(configuration.shardKind.rawValue)),
                ("token_stream", tokenStream(windowRecord.documentIndex, idBytes: windowRecord.streamIDBytes)),
                ("shards", shardList(shards)),
                ("splits", splits(windowRecord, shards: validationShards)),
            ]))
    }

    /// Inputs that were not read completely: the output is partial (empty when it is not).
    static func partialList(_ inputs: [IngestReport.PartialInput]) -> JSONNode {
        JSONNode(
            .array(
                inputs.map { input in
                    JSONNode(
                        .object([
                            ("file", string(input.file)),
                            ("member", input.member.map(string) ?? JSONNode(.null)),
                            ("offset", input.offset.map(int) ?? JSONNode(.null)),
                            ("reason", string(input.reason)),
                        ]))
                }))
    }

    /// `splits`: null, or the validation split's documents, totals, token stream and shards.
    static func splits(_ window: WindowStage.Sidecar, shards: [MaterializeStage.ShardRecord]) -> JSONNode {
        guard let split = window.validation else { return JSONNode(.null) }
        return JSONNode(
            .object([
                (
                    ValidationSplit.name,
                    JSONNode(
                        .object([
                            (
                                "totals",
                                JSONNode(
                                    .object([
                                        ("documents", int(split.documents)), ("tokens", int(split.streamLength)),
                                        ("windows", int(split.windows)), ("batches", int(split.batches)),
                                        ("shard_bytes", int(shards.reduce(0) { $0 + $1.fileBytes })),
                                    ]))
                            ),
                            ("token_stream", tokenStream(split.documentIndex, idBytes: window.streamIDBytes)),
                            ("shards", shardList(shards)),
                        ]))
                )
            ]))
    }

    static func shardList(_ shards: [MaterializeStage.ShardRecord]) -> JSONNode {
        JSONNode(
            .array(
                shards.map { shard in
                    if let first = shard.firstToken, let count = shard.tokenCount {
                        return JSONNode(
                            .object([
                                ("file", string(shard.file)), ("first_token", int(first)),
                                ("tokens", int(count)), ("content_bytes", int(shard.contentBytes)),
                                ("bytes", int(shard.fileBytes)), ("sha256", string(shard.sha256)),
                            ]))
                    }
                    return JSONNode(
                        .object([
                            ("file", string(shard.file)), ("first_batch", int(shard.firstBatch)),
                            ("batches", int(shard.batchCount)),
                            ("windows", int(shard.windowCount)), ("content_bytes", int(shard.contentBytes)),
                            ("bytes", int(shard.fileBytes)), ("sha256", string(shard.sha256)),
                        ]))
                }))
    }

    /// Token shards (`shards_kind` "tokens"): how the ids are stored and the document index;
    /// null for batch shards.
    static func tokenStream(_ index: WindowStage.FileRecord?, idBytes: Int) -> JSONNode {
        guard let index else { return JSONNode(.null) }
        return JSONNode(
            .object([
                ("dtype", string(idBytes == 2 ? "uint16" : "uint32")),
                ("block_bytes", int(TokenShards.blockBytes)),
                (
                    "documents",
                    JSONNode(
                        .object([
                            ("file", string(index.file)), ("count", int(index.bytes / 8)),
                            ("bytes", int(index.bytes)), ("sha256", string(index.sha256)),
                        ]))
                ),
            ]))
    }
}
