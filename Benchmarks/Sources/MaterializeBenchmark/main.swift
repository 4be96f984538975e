// Times the materialize stage (embedding lookup + dtype + safetensors + LZ4 frame, written
// to OUT_DIR) on real token ids, and leaves the same ids and tables as raw files for
// materialize_bench.py to give NumPy + python-lz4 the identical work.
//
// Usage: MaterializeBenchmark VOCAB CORPUS_DIR OUT_DIR TOKENS DIM THREADS
// Prints one JSON line: raw tensor bytes written, seconds (median of 3), shard count.
import Dispatch
import Foundation
import SluiceBPE
import SluiceConfig
import SluiceEmbedding
import SluiceIO
import SluicePipeline

let arguments = CommandLine.arguments
guard arguments.count == 7, let tokenTarget = Int(arguments[4]), let dim = Int(arguments[5]),
    let threads = Int(arguments[6])
else {
    FileHandle.standardError.write(
        Data("usage: MaterializeBenchmark VOCAB CORPUS_DIR OUT_DIR TOKENS DIM THREADS\n".utf8))
    exit(2)
}
let encoder = try BPEEncoder(vocabulary: Vocabulary.load(tiktokenFile: arguments[1]))
let outDirectory = arguments[3]
var ids: [UInt32] = []
for file in try FileManager.default.contentsOfDirectory(atPath: arguments[2]).filter({ !$0.hasPrefix(".") }).sorted() {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: arguments[2] + "/" + file)))
    encoder.encodeOrdinary(utf8: bytes, into: &ids)
    ids.append(50256)
    if ids.count >= tokenTarget { break }
}
ids = Array(ids.prefix(tokenTarget))
let streamIDs = ids
let maxLength = 256
let window = WindowSettings(
    maxLength: maxLength, stride: maxLength, batchSize: 8, shuffle: .none, seed: 123, dropLast: true,
    crossDocument: true)
let stream = TokenStream(length: ids.count, documents: [(0, ids.count)])
let plan = try WindowPlan(stream: stream, settings: window, shuffleGenerator: TorchGenerator(seed: 123))
let made = TableInitializer.torch(seed: 123, shapes: [(50257, dim), (maxLength, dim)])
let tables = EmbeddingTables(
    token: made.tables[0], position: made.tables[1], vocabSize: 50257, contextLength: maxLength, outputDim: dim,
    dtype: .float32)
let layout = OutputLayout(root: outDirectory)
try FileManager.default.createDirectory(atPath: layout.shardsDirectory, withIntermediateDirectories: true)
try Data(LittleEndian.bytes(of: ids.map { Int32(bitPattern: $0) })).write(
    to: URL(fileURLWithPath: outDirectory + "/ids.i32"))
try Data(LittleEndian.bytes(of: made.tables[0])).write(to: URL(fileURLWithPath: outDirectory + "/token.f32"))
try Data(LittleEndian.bytes(of: made.tables[1])).write(to: URL(fileURLWithPath: outDirectory + "/position.f32"))

let perShard = plan.batchesPerShard(targetBytes: 256 << 20, bytesPerToken: 8 + dim * 4)
let ranges = stride(from: 0, to: plan.batchCount, by: perShard).map { $0..<min($0 + perShard, plan.batchCount) }
var seconds: [Double] = []
var written = 0
for _ in 0..<3 {
    let start = DispatchTime.now().uptimeNanoseconds
    let counter = ResultCounter()
    DispatchQueue.concurrentPerform(iterations: threads) { worker in
        for (shard, range) in ranges.enumerated() where shard % threads == worker {
            do {
                let record = try MaterializeStage.run(
                    shard: shard, firstBatch: range.lowerBound, batchCount: range.count,
                    sampleStarts: plan.sampleStarts(ofBatches: range), maxLength: maxLength, tokens: streamIDs,
                    tables: tables, layout: layout)
                counter.add(record.contentBytes)
            } catch {
                fatalError("\(error)")
            }
        }
    }
    seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    written = counter.total
}
seconds.sort()
print(
    "{\"raw_bytes\": \(written), \"seconds\": \(seconds[1]), \"shards\": \(ranges.count), \"windows\": \(plan.batchCount * 8), \"max_length\": \(maxLength), \"dim\": \(dim)}"
)

final class ResultCounter: @unchecked Sendable {
    // Invariant: `total` is only touched under `lock`.
    private let lock = NSLock()
    private var sum = 0
    func add(_ value: Int) { lock.withLock { sum += value } }
    var total: Int { lock.withLock { sum } }
}
