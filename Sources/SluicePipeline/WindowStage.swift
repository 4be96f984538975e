import Foundation
import SluiceBPE
import SluiceConfig
import SluiceEmbedding
import SluiceIO
import SluiceIngest
import SluiceVectors
import SluiceWords

#if canImport(Glibc)
    import Glibc
#endif

/// The window task and the materialize tasks: everything a trainer reads, made from the
/// tokens parts.
///
/// The window task (one, after every tokenize task) writes the flat stream file, the window
/// starts in sample order and the tables, then its completion record `_work/window.json`,
/// which fixes the shards. Each materialize task then makes one shard from those files alone,
/// holding one window of ids and the tables — so a task's memory does not grow with the corpus.
public enum WindowStage: StageRunner {
    public static let formatName = "sluice.window.v1"

    public struct TableRecord: Codable, Sendable, Equatable {
        public var name: String
        public var file: String
        public var shape: [Int]
        public var sha256: String
    }

    /// One shard to make: a range of batches, or (`shards.kind` "tokens") a range of the stream.
    public struct ShardSpan: Codable, Sendable, Equatable {
        public var shard: Int
        public var firstBatch: Int
        public var batchCount: Int
        /// Token shards only: the first id of the stream the shard holds, and how many.
        public var firstToken: Int?
        public var tokenCount: Int?
        /// "validation" for a shard of the validation split (files under OUT/validation/).
        public var split: String?
        enum CodingKeys: String, CodingKey {
            case shard
            case firstBatch = "first_batch"
            case batchCount = "batches"
            case firstToken = "first_token"
            case tokenCount = "tokens"
            case split
        }
    }

    /// The validation split's stream, windows and shards (`split` in the config), beside the
    /// training split that the window record's own fields describe.
    public struct SplitRecord: Codable, Sendable, Equatable {
        public var documents: Int
        public var streamLength: Int
        public var streamFileBytes: Int
        public var streamSHA256: String
        public var windows: Int
        public var batches: Int
        public var windowsFileBytes: Int
        public var windowsSHA256: String
        /// Numbered after the training split's shards (task ids are unique); files are named by
        /// their place in this split.
        public var shards: [ShardSpan]
        public var documentIndex: FileRecord?

        enum CodingKeys: String, CodingKey {
            case documents
            case streamLength = "stream_length"
            case streamFileBytes = "stream_file_bytes"
            case streamSHA256 = "stream_sha256"
            case windows, batches
            case windowsFileBytes = "windows_file_bytes"
            case windowsSHA256 = "windows_sha256"
            case shards
            case documentIndex = "document_index"
        }
    }

    /// A file the window task writes into the output proper (the token shards' document index).
    public struct FileRecord: Codable, Sendable, Equatable {
        public var file: String
        public var bytes: Int
        public var sha256: String
    }

    /// The window task's completion record.
    public struct Sidecar: Codable, Sendable, Equatable {
        public var format = WindowStage.formatName
        /// SHA-256 of every tokens part, in order: the inputs this was made from.
        public var sources: [String]
        public var streamLength: Int
        public var streamIDBytes: Int
        public var streamFileBytes: Int
        public var streamSHA256: String
        public var windows: Int
        public var batches: Int
        public var maxLength: Int
        public var batchSize: Int
        public var windowsFileBytes: Int
        public var windowsSHA256: String
        public var shards: [ShardSpan]
        public var tables: [TableRecord]
        /// `shards.kind` "tokens": the document index (`shards/documents.idx`).
        public var documentIndex: FileRecord?
        /// The validation split, when the config has one.
        public var validation: SplitRecord?
        /// `embedding.vectors`: how many rows and stream tokens the word vectors cover.
        public var vectorCoverage: VectorCoverage?
        /// Digest of the tokens parts and every setting the stream, windows, tables and shards
        /// depend on; a materialize task's identity is this record's digest.
        public var identity: String

        enum CodingKeys: String, CodingKey {
            case format, sources
            case streamLength = "stream_length"
            case streamIDBytes = "stream_id_bytes"
            case streamFileBytes = "stream_file_bytes"
            case streamSHA256 = "stream_sha256"
            case windows, batches
            case maxLength = "max_length"
            case batchSize = "batch_size"
            case windowsFileBytes = "windows_file_bytes"
            case windowsSHA256 = "windows_sha256"
            case shards, tables, identity
            case documentIndex = "document_index"
            case validation
            case vectorCoverage = "vector_coverage"
        }

        /// Every shard of both splits, in task order.
        public var allShards: [ShardSpan] { shards + (validation?.shards ?? []) }

        /// Identity of this record, which every shard record names as its source.
        public var digest: String { SHA256Hasher.hex((try? StableJSON.encode(self)) ?? []) }
    }

    /// A shard's completion record: the shard and the window record it was made from.
    struct ShardCompletion: Codable {
        var source: String
        var shard: MaterializeStage.ShardRecord
    }

    // MARK: The window task

    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let configuration = context.configuration
        let layout = context.layout
        guard configuration.window != nil else {
            throw PipelineError(.config, "\(configuration.file): no \"window\" section")
        }
        let tokens = try task.needs.map { tokenize in
            try Completion.upstream(
                TokenizeStage.Sidecar.self, layout.tokensSidecar(tokenize.index ?? 0), from: tokenize, for: task.id)
        }
        let tokenizer = try TokenizerStage.record(for: task.id, layout: layout)
        let identity = try identity(configuration: configuration, tokens: tokens, idUpperBound: tokenizer.idUpperBound)
        if let done = completed(identity: identity, layout: layout) {
            return TaskReport(
                "window: already done, \(done.windows) windows in \(done.shards.count) shard(s)", reused: true,
                counters: ["windows": done.windows])
        }
        let record = try run(
            configuration: configuration, tokenizer: tokenizer, tokens: tokens, identity: identity,
            layout: layout, force: context.allowLargeOutput, log: context.events.log)
        return TaskReport(
            "window: \(record.windows) windows, \(record.batches) batches in \(record.shards.count) shard(s)",
            reused: false, counters: ["windows": record.windows])
    }

    /// What the window task's outputs are made from: the tokens parts, the tokenizer's id range
    /// and the window, embedding and shards sections (a pretrained table file by path, size and
    /// modification time — hashing gigabytes of vectors on every run would cost more than it saves).
    static func identity(configuration: Configuration, tokens: [TokenizeStage.Sidecar], idUpperBound: Int) throws
        -> String
    {
        var hasher = IdentityHasher(.window)
        hasher.add("tokens", tokens.map(\.sha256))
        hasher.add("id_upper_bound", String(idUpperBound))
        for section in ["window", "embedding", "shards", "split"] {
            hasher.add(section, section: configuration.resolved[section])
        }
        for (key, file) in [
            ("pretrained", configuration.embedding?.pretrained), ("vectors", configuration.embedding?.vectors),
        ]
        where configuration.embedding?.initializer == "pretrained" {
            guard let file else { continue }
            let path = configuration.resolvePath(file)
            var info = stat()
            guard stat(path, &info) == 0 else {
                throw PipelineError.system("cannot read embedding.\(key)", path: path)
            }
            hasher.add(key, "\(path) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)")
        }
        return hasher.finalize()
    }

    static func run(
        configuration: Configuration, tokenizer: TokenizerStage.Record, tokens: [TokenizeStage.Sidecar],
        identity: String, layout: OutputLayout, force: Bool, log: (String) -> Void
    ) throws -> Sidecar {
        let idUpperBound = tokenizer.idUpperBound
        guard let window = configuration.window else { throw PipelineError(.internal, "no window section") }
        let fileManager = FileManager.default
        // Shards of an earlier window plan (say, of a smaller corpus) must not linger.
        try? fileManager.removeItem(atPath: layout.shardsDirectory)
        try? fileManager.removeItem(atPath: layout.shardRecordsDirectory)
        try? fileManager.removeItem(atPath: layout.windowSidecar)
        let validationLayout = ValidationSplit.layout(layout)
        let validationNames = ValidationSplit.layout(.relative)
        try? fileManager.removeItem(atPath: validationLayout.root)
        let idBytes = tokens.allSatisfy { $0.idBytes == 2 } ? 2 : 4
        var (stream, streamSHA256, streamBytes) = try TokenStream.writeFlatFile(
            layout: layout, parts: tokens, idBytes: idBytes, to: layout.streamFile)
        var validation: ValidationSplit.Written?
        if configuration.split.isEnabled {
            let file = try TokenStreamFile(path: layout.streamFile, idBytes: idBytes, length: stream.length)
            let chosen = try ValidationSplit.chosen(stream: stream, file: file, settings: configuration.split)
            let written = try ValidationSplit.write(
                stream: stream, idBytes: idBytes, separator: tokens.first?.separatorID, chosen: chosen,
                train: layout, validation: validationLayout)
            (stream, streamSHA256, streamBytes) = written.train
            validation = written.validation
        }
        if configuration.shardKind == .tokens {
            var sidecar = try TokenShards.plan(
                stream: stream, idBytes: idBytes, streamSHA256: streamSHA256, streamFileBytes: streamBytes,
                sources: tokens.map(\.sha256), window: window, targetBytes: configuration.shardTargetBytes,
                identity: identity, layout: layout, names: .relative, firstShard: 0, split: nil)
            if let validation {
                let part = try TokenShards.plan(
                    stream: validation.stream, idBytes: idBytes, streamSHA256: validation.sha256,
                    streamFileBytes: validation.fileBytes, sources: [], window: window,
                    targetBytes: configuration.shardTargetBytes, identity: identity, layout: validationLayout,
                    names: validationNames, firstShard: sidecar.shards.count, split: ValidationSplit.name)
                sidecar.validation = SplitRecord(
                    documents: validation.stream.documents.count, streamLength: part.streamLength,
                    streamFileBytes: part.streamFileBytes, streamSHA256: part.streamSHA256, windows: part.windows,
                    batches: part.batches, windowsFileBytes: part.windowsFileBytes, windowsSHA256: part.windowsSHA256,
                    shards: part.shards, documentIndex: part.documentIndex)
            }
            try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.windowSidecar)
            return sidecar
        }
        if let embedding = configuration.embedding {
            try ReferencedFiles.checkTableRows(configuration, idUpperBound: idUpperBound, source: "the tokenizer")
            // Before drawing any table: a huge output_dim must be refused, not run out of memory.
            let windows = WindowPlan.windowCount(stream: stream, settings: window)
            let rows = (embedding.vocabSize ?? idUpperBound) + (embedding.contextLength ?? window.maxLength)
            let valueBytes = embedding.dtype == "float32" ? 4 : 2
            let estimate =
                windows * window.maxLength * (8 + embedding.outputDim * valueBytes) + rows * embedding.outputDim * 4
            try checkDiskSpace(estimate: estimate, layout: layout, force: force, log: log)
            let text = tokens.reduce(0) { total, part in
                total
                    + ((try? StableJSON.decode(DocsPart.Sidecar.self, from: layout.docsSidecar(part.part)))?
                        .documentBytes
                        ?? 0)
            }
            try checkOutputMultiple(
                embeddingBytes: windows * window.maxLength * embedding.outputDim * valueBytes, textBytes: text,
                embedding: embedding, force: force)
        }
        var shuffleGenerator = TorchGenerator(seed: window.seed)
        var tableRecords: [TableRecord] = []
        var vectorCoverage: VectorCoverage?
        var bytesPerToken = 8
        if let embedding = configuration.embedding {
            let vocabSize = embedding.vocabSize ?? idUpperBound
            let contextLength = embedding.contextLength ?? window.maxLength
            let dim = embedding.outputDim
            var token: [Float]
            let position: [Float]
            if embedding.initializer == "torch" || embedding.vectors != nil {
                let kernel = TorchKernel(rawValue: embedding.torchKernel) ?? .avx2
                let made = TableInitializer.torch(
                    seed: embedding.seed, shapes: [(vocabSize, dim), (contextLength, dim)], kernel: kernel)
                (token, position) = (made.tables[0], made.tables[1])
                // The book creates the tables, then the DataLoader, from one manual_seed.
                if embedding.seed == window.seed { shuffleGenerator = made.generator }
                if let vectors = embedding.vectors {
                    let path = configuration.resolvePath(vectors)
                    let missing = try copyWordVectors(
                        path, format: embedding.vectorsFormat, into: &token, rows: vocabSize, dim: dim,
                        zeroMissing: embedding.missingVectors == "zeros", tokenizer: tokenizer, layout: layout)
                    vectorCoverage = try Self.vectorCoverage(
                        file: path, missing: missing, stream: stream, idBytes: idBytes, layout: layout)
                }
            } else {
                let path = configuration.resolvePath(embedding.pretrained ?? "")
                token = try loadFloat32Table(
                    path, name: embedding.tokenTensor, rows: vocabSize, dim: dim, problem: .config)
                position = try loadFloat32Table(
                    path, name: embedding.positionTensor, rows: contextLength, dim: dim, problem: .config)
            }
            try fileManager.createDirectory(atPath: layout.tablesDirectory, withIntermediateDirectories: true)
            for (name, values, rows) in [
                (tokenTableName, token, vocabSize), (positionTableName, position, contextLength),
            ] {
                let file = "tables/\(name).safetensors"
                let sha256 = try SafeTensors.writeFloat32([(name, [rows, dim], values)], to: layout.path(file))
                tableRecords.append(TableRecord(name: name, file: file, shape: [rows, dim], sha256: sha256))
            }
            bytesPerToken += dim * (embedding.dtype == "float32" ? 4 : 2)
        }

        let train = try planBatches(
            stream: stream, window: window, shuffleGenerator: shuffleGenerator,
            targetBytes: configuration.shardTargetBytes, bytesPerToken: bytesPerToken, layout: layout, firstShard: 0,
            split: nil)
        var sidecar = Sidecar(
            sources: tokens.map(\.sha256), streamLength: stream.length, streamIDBytes: idBytes,
            streamFileBytes: streamBytes, streamSHA256: streamSHA256, windows: train.windows,
            batches: train.batches, maxLength: window.maxLength, batchSize: window.batchSize,
            windowsFileBytes: train.windows * 8, windowsSHA256: train.windowsSHA256, shards: train.shards,
            tables: tableRecords, identity: identity)
        sidecar.vectorCoverage = vectorCoverage
        if let validation {
            // Its own shuffle, from the seed alone: nothing drawn before it.
            let part = try planBatches(
                stream: validation.stream, window: window, shuffleGenerator: TorchGenerator(seed: window.seed),
                targetBytes: configuration.shardTargetBytes, bytesPerToken: bytesPerToken, layout: validationLayout,
                firstShard: train.shards.count, split: ValidationSplit.name)
            sidecar.validation = SplitRecord(
                documents: validation.stream.documents.count, streamLength: validation.stream.length,
                streamFileBytes: validation.fileBytes, streamSHA256: validation.sha256, windows: part.windows,
                batches: part.batches, windowsFileBytes: part.windows * 8, windowsSHA256: part.windowsSHA256,
                shards: part.shards, documentIndex: nil)
        }
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.windowSidecar)
        return sidecar
    }

    /// One split's windows in sample order (`layout.windowsFile`) and its shard ranges.
    static func planBatches(
        stream: TokenStream, window: WindowSettings, shuffleGenerator: TorchGenerator, targetBytes: Int,
        bytesPerToken: Int, layout: OutputLayout, firstShard: Int, split: String?
    ) throws -> (windows: Int, batches: Int, windowsSHA256: String, shards: [ShardSpan]) {
        let plan = try WindowPlan(stream: stream, settings: window, shuffleGenerator: shuffleGenerator)
        try FileManager.default.createDirectory(atPath: layout.workDirectory, withIntermediateDirectories: true)
        let windowsSHA256 = try writeOffsets(plan.order.lazy.map { plan.starts[$0] }, to: layout.windowsFile)

        let perShard = plan.batchesPerShard(targetBytes: targetBytes, bytesPerToken: bytesPerToken)
        var shards: [ShardSpan] = []
        for first in stride(from: 0, to: plan.batchCount, by: perShard) {
            shards.append(
                ShardSpan(
                    shard: firstShard + shards.count, firstBatch: first,
                    batchCount: min(perShard, plan.batchCount - first),
                    split: split))
        }
        return (plan.windowCount, plan.batchCount, windowsSHA256, shards)
    }

    /// Writes `values` as little-endian UInt64s (window starts, document starts), 64 Ki at a
    /// time, atomically; returns the file's SHA-256.
    static func writeOffsets(_ values: some Sequence<Int>, to path: String) throws -> String {
        let writer = try AtomicFileWriter(path: path)
        var hasher = SHA256Hasher()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 << 16)
        func flush() throws {
            try writer.write(bytes)
            hasher.update(bytes)
            bytes.removeAll(keepingCapacity: true)
        }
        for value in values {
            withUnsafeBytes(of: UInt64(value).littleEndian) { bytes.append(contentsOf: $0) }
            if bytes.count == 8 << 16 { try flush() }
        }
        try flush()
        try writer.commit()
        return hasher.finalizeHex()
    }

    /// The window record, if it has this identity and its files still match it.
    static func completed(identity: String, layout: OutputLayout) -> Sidecar? {
        guard let sidecar = try? StableJSON.decode(Sidecar.self, from: layout.windowSidecar),
            sidecar.identity == identity,
            Completion.fileMatches(layout.streamFile, bytes: sidecar.streamFileBytes, sha256: sidecar.streamSHA256),
            Completion.fileMatches(layout.windowsFile, bytes: sidecar.windowsFileBytes, sha256: sidecar.windowsSHA256),
            sidecar.tables.allSatisfy({ (try? SHA256Hasher.hex(ofFile: layout.path($0.file))) == $0.sha256 }),
            sidecar.documentIndex.map({
                Completion.fileMatches(layout.path($0.file), bytes: $0.bytes, sha256: $0.sha256)
            }) ?? true,
            sidecar.validation.map({ split in
                let files = ValidationSplit.layout(layout)
                return Completion.fileMatches(
                    files.streamFile, bytes: split.streamFileBytes, sha256: split.streamSHA256)
                    && Completion.fileMatches(
                        files.windowsFile, bytes: split.windowsFileBytes, sha256: split.windowsSHA256)
                    && (split.documentIndex.map {
                        Completion.fileMatches(layout.path($0.file), bytes: $0.bytes, sha256: $0.sha256)
                    } ?? true)
            }) ?? true
        else { return nil }
        return sidecar
    }

    /// Rows whose token has a vector in `path` replace the torch rows of `token` (row i is
    /// word i's vector, looked up as the tokenizer looks pieces up); the others stay torch's or
    /// become zeros. Returns which rows have no vector.
    static func copyWordVectors(
        _ path: String, format: String?, into token: inout [Float], rows: Int, dim: Int, zeroMissing: Bool,
        tokenizer record: TokenizerStage.Record, layout: OutputLayout
    ) throws -> [Bool] {
        guard case .words(let words) = try TokenizerStage.tokenizer(record, layout: layout) else {
            throw PipelineError(.config, "embedding.vectors needs the word-level tokenizer (tokenizer.words)")
        }
        let vectors: WordVectors
        do {
            vectors = try WordVectors.load(
                path, options: VectorLoadOptions(format: format.flatMap(VectorFormat.init(rawValue:))))
        } catch {
            throw PipelineError(.config, "embedding.vectors: \(error)", path: path)
        }
        // ReferencedFiles checked the header before the run; the file may have changed since.
        try ReferencedFiles.checkWidth(vectors.dim, outputDim: dim, path: path)
        var missing = [Bool](repeating: true, count: rows)
        for id in 0..<min(rows, words.count) {
            guard let index = vectors.index(of: words.lookupForm(words.tokens[id])) else { continue }
            token.replaceSubrange(id * dim..<(id + 1) * dim, with: vectors.row(index))
            missing[id] = false
        }
        if zeroMissing {
            for id in 0..<rows where missing[id] {
                token.replaceSubrange(id * dim..<(id + 1) * dim, with: repeatElement(0, count: dim))
            }
        }
        return missing
    }

    /// The coverage of `missing` rows: the rows, and the training stream's tokens, without a vector.
    static func vectorCoverage(
        file: String, missing: [Bool], stream: TokenStream, idBytes: Int, layout: OutputLayout
    ) throws -> VectorCoverage {
        let withoutVector = missing.filter { $0 }.count
        var coverage = VectorCoverage(
            file: file, rowsFromVectors: missing.count - withoutVector, rowsWithoutVector: withoutVector,
            tokensWithoutVector: 0, streamTokens: stream.length)
        let reader = try TokenStreamFile(path: layout.streamFile, idBytes: idBytes, length: stream.length)
        var ids: [UInt32] = []
        var start = 0
        while start < stream.length {
            let count = min(1 << 20, stream.length - start)
            ids.removeAll(keepingCapacity: true)
            try reader.read(start: start, count: count, into: &ids)
            for id in ids where Int(id) >= missing.count || missing[Int(id)] { coverage.tokensWithoutVector += 1 }
            start += count
        }
        return coverage
    }

    static let tokenTableName = "token_embedding"
    static let positionTableName = "position_embedding"

    /// Reads an F32 [≥ rows, dim] tensor's first `rows` rows straight into a [Float], so a
    /// large table is never held twice.
    /// - Parameter problem: what a file that is not such a table is — a config mistake for
    ///   `embedding.pretrained`, damaged output for `OUT/tables`. Failed reads are I/O (retried).
    static func loadFloat32Table(_ path: String, name: String, rows: Int, dim: Int, problem: PipelineError.Code)
        throws -> [Float]
    {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let number = errno
            if number == ENOENT { throw PipelineError(problem, "\(path): no such file", path: path) }
            throw PipelineError.system("cannot open", path: path, errno: number)
        }
        defer { try? handle.close() }
        do {
            let lengthBytes = [UInt8](try handle.read(upToCount: 8) ?? Data())
            guard lengthBytes.count == 8 else {
                throw PipelineError(problem, "\(path): shorter than a safetensors header", path: path)
            }
            let headerLength = lengthBytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            guard headerLength < 100_000_000 else {
                throw PipelineError(
                    problem, "\(path): safetensors header length \(headerLength) is not plausible", path: path)
            }
            let header = [UInt8](try handle.read(upToCount: headerLength) ?? Data())
            let layout = try SafeTensors.layout(of: lengthBytes + header, path: path)
            guard let entry = layout.tensors.first(where: { $0.tensor.name == name }) else {
                throw PipelineError(
                    problem,
                    "\(path): no tensor \"\(name)\" (has \(layout.tensors.map { "\"\($0.tensor.name)\"" }.joined(separator: ", "))); set embedding.token_tensor / embedding.position_tensor",
                    path: path)
            }
            guard entry.tensor.dtype == .float32, entry.tensor.shape.count == 2, entry.tensor.shape[1] == dim,
                entry.tensor.shape[0] >= rows
            else {
                throw PipelineError(
                    problem,
                    "\(path): tensor \"\(name)\" is \(entry.tensor.dtype.rawValue) \(entry.tensor.shape); expected F32 [≥ \(rows), \(dim)] (embedding.output_dim \(dim))",
                    path: path)
            }
            try handle.seek(toOffset: UInt64(layout.dataStart + entry.range.lowerBound))
            let count = rows * dim
            var failure: (any Error)?
            let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                var filled = 0
                while filled < raw.count {
                    let want = min(raw.count - filled, 64 << 20)
                    guard let data = try? handle.read(upToCount: want), !data.isEmpty else {
                        failure = PipelineError(
                            problem, "\(path): tensor \"\(name)\" is cut short (file truncated?)", path: path)
                        break
                    }
                    data.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: raw[filled..<(filled + data.count)]))
                    filled += data.count
                }
                if failure != nil {
                    raw.initializeMemory(as: UInt8.self, repeating: 0)
                }
                initialized = count
            }
            if let failure { throw failure }
            #if _endian(big)
                return values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
            #else
                return values
            #endif
        } catch let error as PipelineError {
            throw error
        } catch {
            // The read itself failed: I/O, which a retry may get past.
            throw PipelineError(.io, "\(path): \(error)", path: path, underlying: PipelineError.classify(error))
        }
    }

    /// Embeddings larger than this many times the text, and larger than `largeOutputFloor`, are
    /// refused unless `sluice run --allow-large-output` (or --force): they are almost always a
    /// mistake of scale (GPT-2 small's 768 bfloat16 values a token are ~400× English text).
    static let largeOutputMultiple = 64
    static let largeOutputFloor = 1 << 30

    static func checkOutputMultiple(embeddingBytes: Int, textBytes: Int, embedding: EmbeddingSettings, force: Bool)
        throws
    {
        guard !force, embeddingBytes > largeOutputFloor, embeddingBytes > largeOutputMultiple * max(1, textBytes)
        else { return }
        let multiple = embeddingBytes / max(1, textBytes)
        throw PipelineError(
            .config,
            "the embeddings would take \(OutputEstimate.size(embeddingBytes)), \(multiple)× the \(OutputEstimate.size(textBytes)) of text (\(embedding.outputDim) values of \(embedding.dtype) per token); nothing was written. Store ids only (\"shards\": {\"kind\": \"tokens\"}) and look embeddings up in the trainer, lower embedding.output_dim, or pass --allow-large-output"
        )
    }

    /// Warns before a huge output and refuses one that cannot fit the free disk unless forced.
    static func checkDiskSpace(estimate: Int, layout: OutputLayout, force: Bool, log: (String) -> Void) throws {
        var info = statvfs()
        guard statvfs(layout.root, &info) == 0 else { return }
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        if estimate > 10 << 30 {
            log(
                "warning: the tables and shards will hold about \(OutputEstimate.size(estimate)) before compression (tokens × dim × bytes per value)"
            )
        }
        if estimate > free && !force {
            throw PipelineError(
                .io,
                "the tables and shards would need about \(OutputEstimate.size(estimate)) but \(layout.root) has \(OutputEstimate.size(free)) free; free space, lower embedding.output_dim or use float16/bfloat16, or pass --force",
                path: layout.root, retryable: false)
        }
    }
}
