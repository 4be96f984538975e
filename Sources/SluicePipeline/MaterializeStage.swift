import Foundation
import SluiceConfig
import SluiceEmbedding
import SluiceIO

// Performance notes (2 M GPT-2 tokens, dim 256, 2.06 GB raw, to /dev/shm, release build;
// Benchmarks/materialize_bench.py): 0.43 GB/s on one thread, 0.98 GB/s on two, against 0.14
// GB/s for NumPy + python-lz4 doing the same work. The profile is kernel page copies into
// tmpfs (31%), the manifest's SHA-256 of each shard (19%), the lookup itself (13%); LZ4 on
// float32 barely registers (incompressible blocks are stored). Turning the frame's content
// checksum off changed nothing measurable then (0.43 vs 0.45 GB/s).
// Deciding the dtype once per row instead of per element: 4.31-4.60 s -> 3.83-3.91 s for the
// same 2.06 GB on one thread (0.45 -> 0.53 GB/s).
// Each batch's embeddings are built in one reused buffer and streamed into the frame, so a
// shard is never held in memory; each element is one float32 addition.
// Later profile at 0.46 GB/s (perf, one thread): SHA-256 22%, liblz4 23-27%, kernel copies
// into tmpfs 28-32%, the lookup 13%. liblz4's share was its XXH32 content checksum (Debian
// builds it for SSE2, multiplying by shifts), not compression. Three alternating runs each,
// GB/s: as before 0.41-0.50; embeddings stored without trying LZ4, checksum kept 0.44-0.47;
// checksum off 0.48-0.66; both 0.57-0.63. Shards now go without the checksum. Stored
// embeddings need whole stored blocks (LZ4F_uncompressedUpdate flushes a short block first,
// and the reader finds rows by fixed 4 MiB blocks): not done yet.

/// The tables a materialize task looks rows up in.
public struct EmbeddingTables: Sendable {
    public var token: [Float]
    public var position: [Float]
    public var vocabSize: Int
    public var contextLength: Int
    public var outputDim: Int
    public var dtype: SafeTensors.DType

    public init(
        token: [Float], position: [Float], vocabSize: Int, contextLength: Int, outputDim: Int, dtype: SafeTensors.DType
    ) {
        self.token = token
        self.position = position
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.outputDim = outputDim
        self.dtype = dtype
    }
}

/// One output shard: whole batches, as one LZ4 frame holding a safetensors file with
/// `inputs` and `targets` (int32 [windows, max_length]) and, with embeddings, `embeddings`
/// ([windows, max_length, output_dim] in the configured dtype).
public enum MaterializeStage: StageRunner {
    public struct ShardRecord: Codable, Sendable, Equatable {
        public var shard: Int
        public var file: String
        public var firstBatch: Int
        public var batchCount: Int
        public var windowCount: Int
        public var contentBytes: Int
        public var fileBytes: Int
        public var sha256: String
        /// Token shards only: the stream range held.
        public var firstToken: Int?
        public var tokenCount: Int?

        enum CodingKeys: String, CodingKey {
            case shard, file
            case firstBatch = "first_batch"
            case batchCount = "batches"
            case windowCount = "windows"
            case contentBytes = "content_bytes"
            case fileBytes = "file_bytes"
            case sha256
            case firstToken = "first_token"
            case tokenCount = "tokens"
        }
    }

    /// Writes shard `shard`: batches starting at `firstBatch`, whose windows start at
    /// `sampleStarts` (sample order), with ids read from `tokens`. The file is the `local`-th
    /// shard of `layout` (a split's layout), named in `names`.
    public static func run(
        shard: Int, firstBatch: Int, batchCount: Int, sampleStarts: [Int], maxLength length: Int,
        tokens: some TokenSource, tables: EmbeddingTables?, layout: OutputLayout, local: Int? = nil,
        names: OutputLayout = .relative
    ) throws -> ShardRecord {
        let local = local ?? shard
        var inputs: [Int32] = []
        var targets: [Int32] = []
        inputs.reserveCapacity(sampleStarts.count * length)
        targets.reserveCapacity(sampleStarts.count * length)
        var window: [UInt32] = []
        for start in sampleStarts {
            try tokens.read(start: start, count: length + 1, into: &window)
            for offset in 0..<length {
                inputs.append(Int32(bitPattern: window[offset]))
                targets.append(Int32(bitPattern: window[offset + 1]))
            }
        }
        let samples = sampleStarts
        var tensors = [
            SafeTensors.Tensor(name: "inputs", dtype: .int32, shape: [samples.count, length]),
            SafeTensors.Tensor(name: "targets", dtype: .int32, shape: [samples.count, length]),
        ]
        if let tables {
            guard length <= tables.contextLength else {
                throw PipelineError(
                    .config,
                    "window.max_length \(length) is longer than the position table (\(tables.contextLength) rows)")
            }
            if let bad = inputs.enumerated().first(where: { Int($0.element) >= tables.vocabSize || $0.element < 0 }) {
                throw PipelineError(
                    .config,
                    "token id \(bad.element) (shard \(shard), row \(bad.offset / length)) is outside the token table of \(tables.vocabSize) rows; set embedding.vocab_size to at least the tokenizer's id range"
                )
            }
            tensors.append(
                SafeTensors.Tensor(
                    name: "embeddings", dtype: tables.dtype, shape: [samples.count, length, tables.outputDim]))
        }
        let path = layout.shard(local)
        // No frame content checksum here: the manifest's SHA-256 of each shard is what `sluice
        // verify` and the reader check, and liblz4's XXH32 over every byte was a quarter of
        // this stage's time (see the notes at the top).
        var frameOptions = LZ4FrameWriter.Options()
        frameOptions.contentChecksum = false
        let writer = try LZ4FrameWriter(path: path, options: frameOptions)
        try writer.write(SafeTensors.header(for: tensors))
        try writer.write(LittleEndian.bytes(of: inputs))
        try writer.write(LittleEndian.bytes(of: targets))
        if let tables {
            let rowBytes = length * tables.outputDim * tables.dtype.byteCount
            var buffer = [UInt8](repeating: 0, count: rowBytes)
            for row in 0..<samples.count {
                fillEmbeddings(ids: inputs[(row * length)..<((row + 1) * length)], tables: tables, into: &buffer)
                try writer.write(buffer)
            }
        }
        let (sha256, fileBytes) = try writer.finish()
        return ShardRecord(
            shard: shard, file: names.shard(local), firstBatch: firstBatch, batchCount: batchCount,
            windowCount: samples.count, contentBytes: writer.contentByteCount, fileBytes: fileBytes, sha256: sha256)
    }

    // MARK: - The materialize task

    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let shard = task.id.index ?? 0
        let layout = context.layout
        let window = try Completion.upstream(
            WindowStage.Sidecar.self, layout.windowSidecar, from: .window, for: task.id)
        if let done = completed(shard, window: window, layout: layout) {
            return TaskReport(
                "materialize \(done.file): already done", reused: true, counters: ["bytes": done.contentBytes])
        }
        let made = try materialize(shard: shard, configuration: context.configuration, window: window, layout: layout)
        let what = made.tokenCount.map { "\($0) ids" } ?? "\(made.batchCount) batches"
        return TaskReport(
            "materialize \(made.file): \(what), \(made.contentBytes) bytes", reused: false,
            counters: ["bytes": made.contentBytes])
    }

    /// A shard's completion record: the shard, and the digest of the window record it was made
    /// from — its identity, since that record holds the window task's identity.
    struct ShardCompletion: Codable {
        var source: String
        var shard: ShardRecord
    }

    /// Makes shard `shard` of the window record, and its completion record.
    static func materialize(
        shard: Int, configuration: Configuration, window: WindowStage.Sidecar, layout: OutputLayout
    ) throws -> ShardRecord {
        guard let span = window.allShards.first(where: { $0.shard == shard }) else {
            throw PipelineError(
                .config,
                "shard \(shard) is not in the window plan (\(window.allShards.count) shard(s)); see \(layout.windowSidecar)"
            )
        }
        // A validation shard reads and writes under OUT/validation/, numbered within its split.
        let validation = span.split == nil ? nil : window.validation
        let files = validation == nil ? layout : ValidationSplit.layout(layout)
        let names = validation == nil ? OutputLayout.relative : ValidationSplit.layout(.relative)
        let local = shard - (validation == nil ? 0 : window.shards.count)
        let streamLength = validation?.streamLength ?? window.streamLength
        let windowCount = validation?.windows ?? window.windows
        if let firstToken = span.firstToken, let tokenCount = span.tokenCount {
            try FileManager.default.createDirectory(
                atPath: layout.shardRecordsDirectory, withIntermediateDirectories: true)
            let record = try TokenShards.write(
                shard: shard, local: local, firstToken: firstToken, tokenCount: tokenCount,
                idBytes: window.streamIDBytes, streamLength: streamLength, layout: files, names: names)
            try AtomicFileWriter.write(
                try StableJSON.encode(ShardCompletion(source: window.digest, shard: record)),
                to: layout.shardRecord(shard))
            return record
        }
        var tables: EmbeddingTables?
        if let embedding = configuration.embedding {
            guard window.tables.count == 2 else {
                throw PipelineError(.damagedOutput, "\(layout.windowSidecar): tables are missing; run again")
            }
            let (token, position) = (window.tables[0], window.tables[1])
            let dim = embedding.outputDim
            let dtype: SafeTensors.DType =
                embedding.dtype == "float16" ? .float16 : embedding.dtype == "bfloat16" ? .bfloat16 : .float32
            tables = EmbeddingTables(
                token: try WindowStage.loadFloat32Table(
                    layout.path(token.file), name: token.name, rows: token.shape[0], dim: dim, problem: .damagedOutput),
                position: try WindowStage.loadFloat32Table(
                    layout.path(position.file), name: position.name, rows: position.shape[0], dim: dim,
                    problem: .damagedOutput),
                vocabSize: token.shape[0], contextLength: position.shape[0], outputDim: dim, dtype: dtype)
        }
        let first = span.firstBatch * window.batchSize
        let last = min((span.firstBatch + span.batchCount) * window.batchSize, windowCount)
        let starts = try readStarts(files.windowsFile, range: first..<last)
        let stream = try TokenStreamFile(path: files.streamFile, idBytes: window.streamIDBytes, length: streamLength)
        try FileManager.default.createDirectory(atPath: files.shardsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: layout.shardRecordsDirectory, withIntermediateDirectories: true)
        let record = try run(
            shard: shard, firstBatch: span.firstBatch, batchCount: span.batchCount, sampleStarts: starts,
            maxLength: window.maxLength, tokens: stream, tables: tables, layout: files, local: local, names: names)
        try AtomicFileWriter.write(
            try StableJSON.encode(ShardCompletion(source: window.digest, shard: record)), to: layout.shardRecord(shard))
        return record
    }

    /// The record of a finished shard, if it was made from this window record and still matches.
    /// - Parameter hashing: re-hash the shard (what a task does before skipping itself); without
    ///   it only the record and the file's size are checked — for finalize, right after the
    ///   shard's own task wrote or checked it.
    static func completed(_ shard: Int, window: WindowStage.Sidecar, layout: OutputLayout, hashing: Bool = true)
        -> ShardRecord?
    {
        guard let completion = try? StableJSON.decode(ShardCompletion.self, from: layout.shardRecord(shard)),
            completion.source == window.digest
        else { return nil }
        let path = layout.path(completion.shard.file)
        let intact =
            hashing
            ? Completion.fileMatches(
                path, bytes: completion.shard.fileBytes, sha256: completion.shard.sha256)
            : Completion.fileHasSize(path, completion.shard.fileBytes)
        return intact ? completion.shard : nil
    }

    static func readStarts(_ path: String, range: Range<Int>) throws -> [Int] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw PipelineError.system("cannot open", path: path)
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(range.lowerBound * 8))
            let data = try handle.read(upToCount: range.count * 8) ?? Data()
            guard data.count == range.count * 8 else {
                throw PipelineError(
                    .damagedOutput, "\(path): shorter than its record says; run again — the window task is redone",
                    path: path)
            }
            return data.withUnsafeBytes { raw in
                (0..<range.count).map {
                    Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)))
                }
            }
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError(.io, "\(path): \(error.localizedDescription)", path: path)
        }
    }

    /// `embeddings[t, :] = token[ids[t], :] + position[t, :]`, as little-endian bytes of `dtype`.
    static func fillEmbeddings(ids: ArraySlice<Int32>, tables: EmbeddingTables, into buffer: inout [UInt8]) {
        let dim = tables.outputDim
        let width = tables.dtype.byteCount
        buffer.withUnsafeMutableBytes { output in
            for (t, id) in ids.enumerated() {
                let tokenBase = Int(id) * dim
                let positionBase = t * dim
                let rowOffset = t * dim * width
                // One dtype decision per row, not per element.
                switch tables.dtype {
                case .float32:
                    for d in 0..<dim {
                        let value = tables.token[tokenBase + d] + tables.position[positionBase + d]
                        output.storeBytes(
                            of: value.bitPattern.littleEndian, toByteOffset: rowOffset + d * 4, as: UInt32.self)
                    }
                case .float16:
                    for d in 0..<dim {
                        let value = tables.token[tokenBase + d] + tables.position[positionBase + d]
                        output.storeBytes(
                            of: HalfPrecision.float16Bits(value).littleEndian, toByteOffset: rowOffset + d * 2,
                            as: UInt16.self)
                    }
                default:
                    for d in 0..<dim {
                        let value = tables.token[tokenBase + d] + tables.position[positionBase + d]
                        output.storeBytes(
                            of: HalfPrecision.bfloat16Bits(value).littleEndian, toByteOffset: rowOffset + d * 2,
                            as: UInt16.self)
                    }
                }
            }
        }
    }
}
