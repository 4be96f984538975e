import Foundation
import SluiceConfig
import SluiceIO

/// `shards.kind` "tokens" (docs/FORMATS.md): the token stream stored once, so that a reader cuts
/// windows of any `max_length` and `stride` at read time — in the spirit of nanoGPT's `.bin` and
/// Megatron's `.bin`/`.idx`, but every file hashed in the manifest.
///
/// Each shard is one standard LZ4 frame of the stream's little-endian ids (`lz4 -d` turns it
/// into a flat `.bin`) with independent 64 KiB blocks: block *k* holds content bytes
/// `k × 65536 ..<`, so a reader finds any id's block from the frame's block headers and
/// decompresses 64 KiB to cut a window — random access without holding the shard. GPT-2 ids
/// compress to about 1.75–1.85 bytes each; an incompressible block is stored, never larger.
/// `shards/documents.idx` holds where each document starts in the stream (UInt64 LE each); a
/// document ends where the next one starts, less the separator when there is one.
enum TokenShards {
    /// Content bytes per LZ4 block: what a reader decompresses to reach one id.
    static let blockBytes = 65536

    /// The window task for token shards: the document index, the shard ranges (whole blocks per
    /// shard, about `targetBytes` of ids) and the window record that fixes them.
    static func plan(
        stream: TokenStream, idBytes: Int, streamSHA256: String, streamFileBytes: Int, sources: [String],
        window: WindowSettings, targetBytes: Int, identity: String, layout: OutputLayout, names: OutputLayout,
        firstShard: Int, split: String?
    ) throws -> WindowStage.Sidecar {
        try FileManager.default.createDirectory(atPath: layout.shardsDirectory, withIntermediateDirectories: true)
        let indexSHA256 = try WindowStage.writeOffsets(stream.documents.lazy.map(\.start), to: layout.documentIndex)
        // No window starts are stored: the reader computes them.
        try FileManager.default.createDirectory(atPath: layout.workDirectory, withIntermediateDirectories: true)
        try AtomicFileWriter.write([], to: layout.windowsFile)

        let windows = WindowPlan.windowCount(stream: stream, settings: window)
        let batches = window.dropLast ? windows / window.batchSize : (windows + window.batchSize - 1) / window.batchSize
        let blockIDs = blockBytes / idBytes
        let perShard = max(1, (targetBytes / idBytes + blockIDs - 1) / blockIDs) * blockIDs
        var shards: [WindowStage.ShardSpan] = []
        for first in stride(from: 0, to: stream.length, by: perShard) {
            shards.append(
                WindowStage.ShardSpan(
                    shard: firstShard + shards.count, firstBatch: 0, batchCount: 0, firstToken: first,
                    tokenCount: min(perShard, stream.length - first), split: split))
        }
        return WindowStage.Sidecar(
            sources: sources, streamLength: stream.length, streamIDBytes: idBytes, streamFileBytes: streamFileBytes,
            streamSHA256: streamSHA256, windows: windows, batches: batches, maxLength: window.maxLength,
            batchSize: window.batchSize, windowsFileBytes: 0, windowsSHA256: SHA256Hasher.hex([]), shards: shards,
            tables: [],
            documentIndex: WindowStage.FileRecord(
                file: names.documentIndex, bytes: stream.documents.count * 8,
                sha256: indexSHA256),
            identity: identity)
    }

    /// A materialize task for token shards: ids `firstToken ..< firstToken + tokenCount` of the
    /// flat stream into `shards/tokens-NNNNN.lz4`, one block at a time.
    static func write(
        shard: Int, local: Int, firstToken: Int, tokenCount: Int, idBytes: Int, streamLength: Int,
        layout: OutputLayout, names: OutputLayout
    ) throws -> MaterializeStage.ShardRecord {
        try FileManager.default.createDirectory(atPath: layout.shardsDirectory, withIntermediateDirectories: true)
        let stream = try TokenStreamFile(path: layout.streamFile, idBytes: idBytes, length: streamLength)
        var options = LZ4FrameWriter.Options()
        options.blockSize = .kib64
        let writer = try LZ4FrameWriter(path: layout.tokenShard(local), options: options)
        let blockIDs = blockBytes / idBytes
        var block: [UInt8] = []
        for start in stride(from: firstToken, to: firstToken + tokenCount, by: blockIDs) {
            try stream.readBytes(start: start, count: min(blockIDs, firstToken + tokenCount - start), into: &block)
            try writer.write(block)
        }
        let (sha256, fileBytes) = try writer.finish()
        return MaterializeStage.ShardRecord(
            shard: shard, file: names.tokenShard(local), firstBatch: 0, batchCount: 0, windowCount: 0,
            contentBytes: writer.contentByteCount, fileBytes: fileBytes, sha256: sha256, firstToken: firstToken,
            tokenCount: tokenCount)
    }
}
