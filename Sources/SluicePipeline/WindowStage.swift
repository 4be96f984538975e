import Foundation
import SluiceBPE
import SluiceConfig
import SluiceEmbedding
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// Windows, tables, materialized shards, the tokenizer copy and the manifest: everything a
/// trainer reads, made from the tokens parts.
enum WindowStage {
    struct Result {
        var plan: WindowPlan
        var shards: [MaterializeStage.ShardRecord]
        var tables: [(name: String, file: String, shape: [Int], sha256: String)]
        var stream: TokenStream
    }

    static func run(
        configuration: Configuration, encoder: BPEEncoder, tokens: [TokenizeStage.Sidecar], layout: OutputLayout,
        workers: Int, force: Bool, log: @Sendable (String) -> Void
    ) throws -> Result {
        guard let window = configuration.window else { throw PipelineError("internal: no window section") }
        let stream = try TokenStream.load(layout: layout, parts: tokens)
        if let embedding = configuration.embedding {
            // Before drawing any table: a huge output_dim must be refused, not run out of memory.
            let windows = WindowPlan.windowCount(stream: stream, settings: window)
            let rows = (embedding.vocabSize ?? encoder.idUpperBound) + (embedding.contextLength ?? window.maxLength)
            let valueBytes = embedding.dtype == "float32" ? 4 : 2
            let estimate =
                windows * window.maxLength * (8 + embedding.outputDim * valueBytes) + rows * embedding.outputDim * 4
            try checkDiskSpace(estimate: estimate, layout: layout, force: force, log: log)
        }
        var shuffleGenerator = TorchGenerator(seed: window.seed)
        var tables: EmbeddingTables?
        var tableRecords: [(name: String, file: String, shape: [Int], sha256: String)] = []
        if let embedding = configuration.embedding {
            let vocabSize = embedding.vocabSize ?? encoder.idUpperBound
            let contextLength = embedding.contextLength ?? window.maxLength
            let dim = embedding.outputDim
            let token: [Float]
            let position: [Float]
            if embedding.initializer == "torch" {
                let kernel = TorchKernel(rawValue: embedding.torchKernel) ?? .avx2
                let made = TableInitializer.torch(
                    seed: embedding.seed, shapes: [(vocabSize, dim), (contextLength, dim)], kernel: kernel)
                (token, position) = (made.tables[0], made.tables[1])
                // The book creates the tables, then the DataLoader, from one manual_seed.
                if embedding.seed == window.seed { shuffleGenerator = made.generator }
            } else {
                (token, position) = try loadPretrained(
                    configuration.resolvePath(embedding.pretrained ?? ""),
                    names: (embedding.tokenTensor, embedding.positionTensor),
                    vocabSize: vocabSize, contextLength: contextLength, dim: dim)
            }
            let dtype: SafeTensors.DType =
                embedding.dtype == "float16" ? .float16 : embedding.dtype == "bfloat16" ? .bfloat16 : .float32
            tables = EmbeddingTables(
                token: token, position: position, vocabSize: vocabSize, contextLength: contextLength, outputDim: dim,
                dtype: dtype)
            try FileManager.default.createDirectory(atPath: layout.tablesDirectory, withIntermediateDirectories: true)
            for (name, values, rows) in [
                ("token_embedding", token, vocabSize), ("position_embedding", position, contextLength),
            ] {
                let file = "tables/\(name).safetensors"
                let sha256 = try SafeTensors.writeFloat32([(name, [rows, dim], values)], to: layout.root + "/" + file)
                tableRecords.append((name, file, [rows, dim], sha256))
            }
        }

        let plan = try WindowPlan(stream: stream, settings: window, shuffleGenerator: shuffleGenerator)
        let bytesPerToken = 8 + (tables.map { $0.outputDim * $0.dtype.byteCount } ?? 0)
        let perShard = plan.batchesPerShard(targetBytes: configuration.shardTargetBytes, bytesPerToken: bytesPerToken)
        let ranges = stride(from: 0, to: plan.batchCount, by: perShard).map { $0..<min($0 + perShard, plan.batchCount) }
        log(
            "window: \(plan.windowCount) windows, \(plan.batchCount) batches of \(window.batchSize) in \(ranges.count) shard(s)"
        )

        // Stale shards of an earlier run (say, with a larger corpus) must not linger.
        try? FileManager.default.removeItem(atPath: layout.shardsDirectory)
        try FileManager.default.createDirectory(atPath: layout.shardsDirectory, withIntermediateDirectories: true)
        let frozenTables = tables
        let shards = try PipelineRunner.parallel(Array(ranges.enumerated()), workers: workers) { shard, range in
            let record = try MaterializeStage.run(
                shard: shard, batches: range, plan: plan, stream: stream, tables: frozenTables, layout: layout)
            log(
                "materialize \(MaterializeStage.shardName(shard)): \(record.batchCount) batches, \(record.contentBytes) bytes"
            )
            return record
        }
        return Result(plan: plan, shards: shards, tables: tableRecords, stream: stream)
    }

    static func loadPretrained(
        _ path: String, names: (token: String, position: String), vocabSize: Int, contextLength: Int, dim: Int
    ) throws -> ([Float], [Float]) {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw PipelineError("embedding.pretrained: \(path): cannot read: \(error.localizedDescription)")
        }
        let layout = try SafeTensors.layout(of: bytes, path: path)
        func table(_ name: String, rows: Int) throws -> [Float] {
            guard let entry = layout.tensors.first(where: { $0.tensor.name == name }) else {
                throw PipelineError(
                    "\(path): no tensor \"\(name)\" (has \(layout.tensors.map { "\"\($0.tensor.name)\"" }.joined(separator: ", "))); set embedding.token_tensor / embedding.position_tensor"
                )
            }
            guard entry.tensor.dtype == .float32, entry.tensor.shape.count == 2, entry.tensor.shape[1] == dim,
                entry.tensor.shape[0] >= rows
            else {
                throw PipelineError(
                    "\(path): tensor \"\(name)\" is \(entry.tensor.dtype.rawValue) \(entry.tensor.shape); expected F32 [≥ \(rows), \(dim)] (embedding.output_dim \(dim))"
                )
            }
            let start = layout.dataStart + entry.range.lowerBound
            return LittleEndian.floats(bytes[start..<(start + rows * dim * 4)])
        }
        return (try table(names.token, rows: vocabSize), try table(names.position, rows: contextLength))
    }

    /// Warns before a huge output and refuses one that cannot fit the free disk unless forced.
    static func checkDiskSpace(estimate: Int, layout: OutputLayout, force: Bool, log: (String) -> Void) throws {
        var info = statvfs()
        guard statvfs(layout.root, &info) == 0 else { return }
        let free = Int(info.f_bavail) * Int(info.f_frsize)
        let gib = { (bytes: Int) in String(format: "%.1f GiB", Double(bytes) / 1_073_741_824) }
        if estimate > 10 << 30 {
            log(
                "warning: the tables and shards will hold about \(gib(estimate)) before compression (tokens × dim × bytes per value)"
            )
        }
        if estimate > free && !force {
            throw PipelineError(
                "the tables and shards would need about \(gib(estimate)) but \(layout.root) has \(gib(free)) free; free space, lower embedding.output_dim or use float16/bfloat16, or pass --force"
            )
        }
    }
}
