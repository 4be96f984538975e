// Times SluiceBPE on a directory of UTF-8 documents (every regular file, sorted by path),
// the way tokenizer_bench.py times tiktoken and HF tokenizers on the same files.
//
// Usage: TokenizerBenchmark VOCAB CORPUS_DIR THREADS REPEATS [IDS_OUT]
// Prints one JSON line: bytes, tokens, best and median seconds, and the piece cache's hit
// rate. IDS_OUT receives every id as little-endian uint32, documents in order, for the
// equality check.
import Dispatch
import Foundation
import SluiceBPE

let arguments = CommandLine.arguments
guard arguments.count >= 5, let threads = Int(arguments[3]), let repeats = Int(arguments[4]) else {
    FileHandle.standardError.write(Data("usage: TokenizerBenchmark VOCAB CORPUS_DIR THREADS REPEATS [IDS_OUT]\n".utf8))
    exit(2)
}
// Every tokenize task is a process that loads the vocabulary once: best of 5 loads (read,
// parse, build the tables) is that fixed cost per task.
var loadSeconds = Double.infinity
var loaded: Vocabulary?
for _ in 0..<5 {
    let start = DispatchTime.now().uptimeNanoseconds
    loaded = try Vocabulary.load(tiktokenFile: arguments[1])
    loadSeconds = min(loadSeconds, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}
guard let loaded else { exit(2) }
let encoder = try BPEEncoder(vocabulary: loaded)
let corpus = URL(fileURLWithPath: arguments[2])
let files = try FileManager.default.subpathsOfDirectory(atPath: corpus.path)
    .filter { !$0.hasPrefix(".") }
    .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
var documents: [[UInt8]] = []
for file in files {
    var isDirectory: ObjCBool = false
    let path = corpus.appendingPathComponent(file).path
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
        documents.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }
}
let byteCount = documents.reduce(0) { $0 + $1.count }

var seconds: [Double] = []
var result: [[TokenID]] = []
for _ in 0..<repeats {
    let start = DispatchTime.now().uptimeNanoseconds
    result = encoder.encodeOrdinaryBatch(documents, threadCount: threads)
    seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}
seconds.sort()
let tokenCount = result.reduce(0) { $0 + $1.count }
if arguments.count >= 6 {
    var all: [UInt32] = []
    all.reserveCapacity(tokenCount)
    for ids in result { all.append(contentsOf: ids.lazy.map(\.littleEndian)) }
    try all.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: arguments[5]))
}
// The piece cache's hit rate on this corpus: one untimed pass on one thread, as one part of the
// tokenize stage or one thread of the batch encoder sees it (a fresh cache of the default size).
let cache = PieceCache()
var scratch: [TokenID] = []
for document in documents {
    scratch.removeAll(keepingCapacity: true)
    encoder.encodeOrdinary(utf8: document, into: &scratch, cache: cache)
}
// The pre-tokenizer alone, one thread, best of `repeats` passes: the share of encode time that
// splitting into pieces costs.
var pretokenizeSeconds = Double.infinity
var pieceCount = 0
for _ in 0..<repeats {
    let start = DispatchTime.now().uptimeNanoseconds
    pieceCount = 0
    for document in documents {
        pieceCount += document.withUnsafeBufferPointer { PreTokenizer.pieceCount($0) }
    }
    pretokenizeSeconds = min(pretokenizeSeconds, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}
print(
    "{\"documents\": \(documents.count), \"bytes\": \(byteCount), \"tokens\": \(tokenCount), "
        + "\"best_seconds\": \(seconds[0]), \"median_seconds\": \(seconds[seconds.count / 2]), "
        + "\"cache_bytes\": \(cache.slotCount * 64), \"cache_probes\": \(cache.lookups), \"cache_hits\": \(cache.hits), "
        + "\"pieces\": \(pieceCount), \"pretokenize_best_seconds\": \(pretokenizeSeconds), "
        + "\"vocabulary_load_seconds\": \(loadSeconds)}"
)
