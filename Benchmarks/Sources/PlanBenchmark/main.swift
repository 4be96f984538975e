// What the task model costs per run and per worker, on a corpus of many small files: planning
// (grouping inputs into tasks), writing `_work/plan.json`, and what every worker does to find its
// own task in that file. Run: PlanBenchmark [FILES] [OUT_DIRECTORY] (release build).
import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluicePipeline

let fileCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 14_000 : 14_000
let directory = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : NSTemporaryDirectory() + "/plan-bench"
try FileManager.default.createDirectory(atPath: directory + "/_work", withIntermediateDirectories: true)
let config = """
    {"inputs": ["corpus"], "ingest": {"part_bytes": 1048576},
     "tokenizer": {"vocab": "gpt2.tiktoken"}, "window": {"max_length": 256, "stride": 256, "batch_size": 8}}
    """
let configuration = try Configuration.decode(Array(config.utf8), file: directory + "/p.json", baseDirectory: directory)
var generator = SystemRandomNumberGenerator()
let files = (0..<fileCount).map { index in
    let name = "corpus/d\(index % 100)/f\(index).txt"
    return InputFile(
        path: directory + "/" + name, name: name, byteCount: Int.random(in: 200...1500, using: &generator))
}
let layout = OutputLayout(root: directory)

/// Median seconds of `runs` calls.
func median(_ runs: Int = 9, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return times.sorted()[runs / 2]
}

var plan = Plan(configuration: configuration, files: files)
let planning = median { plan = Plan(configuration: configuration, files: files) }
let writing = try median { try plan.write(to: layout) }
let size = (try FileManager.default.attributesOfItem(atPath: layout.planFile)[.size] as? NSNumber)?.intValue ?? 0
let last = try require(plan.tasks.last(where: { $0.id.stage == .tokenize }))
let lookup = try median { _ = try Plan.task(last.id, layout: layout) }
let fullDecode = try median { _ = try Plan.load(from: layout) }
print(
    String(
        format:
            "plan of %d inputs → %d tasks, plan.json %.1f MB: plan %.1f ms, write %.1f ms; a worker's lookup of its task %.2f ms (decoding the whole plan: %.1f ms)",
        fileCount, plan.tasks.count, Double(size) / 1e6, planning * 1e3, writing * 1e3, lookup * 1e3, fullDecode * 1e3))

func require<T>(_ value: T?) throws -> T {
    guard let value else { throw PipelineError(.internal, "no tokenize task") }
    return value
}
