import SluiceConfig
import SluiceEmbedding

/// Which windows exist and in which order they are batched — `GPTDatasetV1` plus the
/// DataLoader's batching, drop_last and shuffle.
public struct WindowPlan: Sendable {
    public let maxLength: Int
    public let batchSize: Int
    /// Window starts in stream order (`i * stride` over the whole stream, or per document).
    public let starts: [Int]
    /// Sample order: a permutation of `0 ..< starts.count`.
    public let order: [Int]
    public let batchCount: Int

    public var windowCount: Int { starts.count }

    /// - Parameter shuffleGenerator: the generator the "torch" shuffle draws from.
    /// - Throws: `PipelineError` when `shuffle: "torch"` is asked for more windows than PyTorch's
    ///   reproduced randperm covers.
    public init(stream: TokenStream, settings: WindowSettings, shuffleGenerator: TorchGenerator) throws {
        maxLength = settings.maxLength
        batchSize = settings.batchSize
        let count = Self.windowCount(stream: stream, settings: settings)
        if settings.shuffle == .torch && count >= TorchGenerator.torchExactPermutationLimit {
            throw PipelineError(
                .config,
                "window.shuffle \"torch\": \(count) windows is beyond the \(TorchGenerator.torchExactPermutationLimit) for which PyTorch's randperm is reproduced; use \"shuffle\": true (a seeded shuffle of any size)"
            )
        }
        var starts: [Int] = []
        starts.reserveCapacity(count)
        if settings.crossDocument {
            starts = Self.starts(length: stream.length, maxLength: settings.maxLength, stride: settings.stride).map {
                $0
            }
        } else {
            for document in stream.documents {
                starts += Self.starts(length: document.length, maxLength: settings.maxLength, stride: settings.stride)
                    .map { document.start + $0 }
            }
        }
        self.starts = starts
        switch settings.shuffle {
        case .none:
            order = Array(starts.indices)
        case .seeded:
            var generator = TorchGenerator(seed: settings.seed)
            order = generator.randomPermutation(starts.count)
        case .torch:
            var generator = shuffleGenerator
            order = generator.dataLoaderEpochOrder(sampleCount: starts.count)
        }
        batchCount =
            settings.dropLast
            ? starts.count / settings.batchSize : (starts.count + settings.batchSize - 1) / settings.batchSize
    }

    /// How many windows `init` would make, without making them (for size estimates).
    public static func windowCount(stream: TokenStream, settings: WindowSettings) -> Int {
        // ceil((length − max_length) / stride) windows when length > max_length, else none.
        func count(_ length: Int) -> Int {
            let span = length - settings.maxLength
            return span > 0 ? (span + settings.stride - 1) / settings.stride : 0
        }
        return settings.crossDocument ? count(stream.length) : stream.documents.reduce(0) { $0 + count($1.length) }
    }

    /// GPTDatasetV1: a window at every `stride` while `start < length - maxLength`.
    static func starts(length: Int, maxLength: Int, stride: Int) -> StrideTo<Int> {
        Swift.stride(from: 0, to: max(0, length - maxLength), by: stride)
    }

    /// Sample indices (into `starts`) of batch `batch`.
    public func windows(ofBatch batch: Int) -> ArraySlice<Int> {
        order[(batch * batchSize)..<min((batch + 1) * batchSize, order.count)]
    }

    /// Window starts of batches `batches`, in sample order — what a materialize task reads.
    public func sampleStarts(ofBatches batches: Range<Int>) -> [Int] {
        batches.flatMap { windows(ofBatch: $0) }.map { starts[$0] }
    }

    /// Batches per shard so that a shard holds about `targetBytes` (at least one batch).
    public func batchesPerShard(targetBytes: Int, bytesPerToken: Int) -> Int {
        max(1, targetBytes / max(1, batchSize * maxLength * bytesPerToken))
    }
}
