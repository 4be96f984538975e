import Dispatch
import Foundation
import SluiceIO
import SluicePipeline

#if canImport(Glibc)
    import Glibc
#endif

/// What `sluice run` shows while it works: on a terminal one live line per stage (tasks
/// done/total, a bar, MB/s of text, tokens/s, ETA); otherwise one plain line per finished
/// task; with `--log json`, one JSON object per event and a progress object per second.
final class ProgressBoard: @unchecked Sendable {
    // Invariant: called only from the executor's serial queue (events) or after it has
    // finished (`close`), so the state needs no lock.
    enum Mode { case terminal, lines, json }

    private struct Stage {
        var total = 0
        var weight = 0
        var done = 0
        var skipped = 0
        var finishedWeight = 0
        var finishedBytes = 0
        var finishedTokens = 0
        var running: [String: (bytes: Int, tokens: Int, weight: Int)] = [:]
        var firstStart: Double?
        var lastEnd: Double?
    }

    private let mode: Mode
    private let order = SluicePipeline.Stage.allCases.map(\.rawValue)
    private var stages: [String: Stage] = [:]
    private var drawnLines = 0
    private var lastJSONProgress = 0.0
    private let clock = DispatchTime.now().uptimeNanoseconds
    private var now: Double { Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9 }

    init(mode: Mode) { self.mode = mode }

    func handle(_ event: ExecutorEvent) {
        switch event {
        case .planned(let tasks):
            for task in tasks {
                stages[task.id.stage.rawValue, default: Stage()].total += 1
                stages[task.id.stage.rawValue, default: Stage()].weight += task.weight
            }
        case .started(let task, let attempt):
            let (stage, id) = (task.id.stage.rawValue, task.id.description)
            if stages[stage]?.firstStart == nil { stages[stage]?.firstStart = now }
            stages[stage]?.running[id] = (0, 0, task.weight)
            if mode == .json {
                emit(["event": .string("started"), "task": .string(id), "attempt": .int(attempt)])
            }
        case .progress(let task, let counters):
            stages[task.id.stage.rawValue]?.running[task.id.description] = (
                counters["bytes"] ?? 0, counters["tokens"] ?? 0, task.weight
            )
        case .log(let task, let message):
            say(
                "\(task.id): \(message)",
                json: ["event": .string("log"), "task": .string(task.id.description), "message": .string(message)])
        case .finished(let task, let outcome):
            let id = task.id.description
            var stage = stages[task.id.stage.rawValue] ?? Stage()
            stage.running[id] = nil
            stage.done += 1
            stage.finishedWeight += task.weight
            stage.lastEnd = now
            let reused = outcome.report?.reused ?? false
            if reused { stage.skipped += 1 }
            stage.finishedBytes += outcome.report?.counters["bytes"] ?? 0
            stage.finishedTokens += outcome.report?.counters["tokens"] ?? 0
            stages[task.id.stage.rawValue] = stage
            let message = outcome.report?.message ?? id
            switch mode {
            case .lines: FileHandle.standardError.write(Data((message + "\n").utf8))
            case .json:
                emit([
                    "event": .string("finished"), "task": .string(id), "message": .string(message),
                    "reused": .bool(reused), "seconds": .double(outcome.finished - outcome.started),
                    "cpu_seconds": .double(outcome.usage.cpuSeconds),
                    "peak_rss_bytes": .int(outcome.usage.peakRSSBytes),
                ])
            case .terminal: break
            }
        case .retrying(let task, let attempt, let reason, let tail):
            stages[task.id.stage.rawValue]?.running[task.id.description] = nil
            say(
                "\(task.id): attempt \(attempt) \(reason); retrying" + (tail.isEmpty ? "" : "\n" + tail),
                json: [
                    "event": .string("retrying"), "task": .string(task.id.description), "attempt": .int(attempt),
                    "reason": .string(reason), "stderr_tail": .string(tail),
                ])
        case .tick:
            if mode == .terminal { draw() }
            if mode == .json && now - lastJSONProgress >= 1 {
                lastJSONProgress = now
                for name in order {
                    guard let stage = stages[name], stage.done < stage.total, stage.firstStart != nil else { continue }
                    let (bytes, tokens) = totals(stage)
                    emit([
                        "event": .string("progress"), "stage": .string(name), "tasks_done": .int(stage.done),
                        "tasks_total": .int(stage.total), "bytes": .int(bytes), "tokens": .int(tokens),
                    ])
                }
            }
        }
    }

    /// Leaves the final state of the board on screen.
    func close() {
        if mode == .terminal { draw() }
    }

    private func totals(_ stage: Stage) -> (bytes: Int, tokens: Int) {
        (
            stage.finishedBytes + stage.running.values.reduce(0) { $0 + $1.bytes },
            stage.finishedTokens + stage.running.values.reduce(0) { $0 + $1.tokens }
        )
    }

    private func line(_ name: String, _ stage: Stage) -> String {
        let (bytes, tokens) = totals(stage)
        let elapsed = max(
            0.001, (stage.lastEnd.flatMap { stage.done == stage.total ? $0 : nil } ?? now) - (stage.firstStart ?? now))
        // Done fraction by weight (input bytes, batches), running tasks by their own progress.
        var doneWeight = Double(stage.finishedWeight)
        if name == "ingest" || name == "tokenize" {
            for task in stage.running.values where task.weight > 0 {
                doneWeight += min(0.99, Double(task.bytes) / Double(task.weight)) * Double(task.weight)
            }
        }
        let fraction =
            stage.total == 0
            ? 1
            : stage.weight > 0 ? min(1, doneWeight / Double(stage.weight)) : Double(stage.done) / Double(stage.total)
        let width = 20
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        var text =
            name.padding(toLength: 12, withPad: " ", startingAt: 0) + bar + " "
            + "\(stage.done)/\(stage.total)".padding(toLength: 10, withPad: " ", startingAt: 0)
        if bytes > 0 {
            text += String(format: "%8.1f MB %7.1f MB/s", Double(bytes) / 1e6, Double(bytes) / 1e6 / elapsed)
        }
        if tokens > 0 {
            text += String(format: "  %7.2f M tok %6.2f M tok/s", Double(tokens) / 1e6, Double(tokens) / 1e6 / elapsed)
        }
        if stage.done == stage.total {
            text += String(format: "  done in %.1f s", elapsed)
            if stage.skipped > 0 { text += " (\(stage.skipped) already done)" }
        } else if fraction > 0.01, stage.firstStart != nil {
            let eta = Int(elapsed * (1 - fraction) / fraction)
            text += String(format: "  ETA %d:%02d", eta / 60, eta % 60)
        }
        return text
    }

    private func draw() {
        let lines = order.compactMap { name in stages[name].map { line(name, $0) } }
        var output = ""
        if drawnLines > 0 { output += "\u{1B}[\(drawnLines)A" }
        for text in lines { output += "\u{1B}[2K" + text + "\n" }
        drawnLines = lines.count
        FileHandle.standardError.write(Data(output.utf8))
    }

    private func say(_ text: String, json: [String: Value]) {
        switch mode {
        case .json: emit(json)
        case .lines: FileHandle.standardError.write(Data((text + "\n").utf8))
        case .terminal:
            // Above the board, which is redrawn below it.
            var output = ""
            if drawnLines > 0 { output += "\u{1B}[\(drawnLines)A\u{1B}[J" }
            drawnLines = 0
            FileHandle.standardError.write(Data((output + text + "\n").utf8))
            draw()
        }
    }

    enum Value {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
    }

    private func emit(_ members: [String: Value]) {
        let fields = members.sorted { $0.key < $1.key }.map { key, value -> String in
            let rendered: String
            switch value {
            case .string(let text): rendered = JSONNode.quoted(text)
            case .int(let number): rendered = String(number)
            case .double(let number): rendered = String(format: "%.3f", number)
            case .bool(let flag): rendered = flag ? "true" : "false"
            }
            return JSONNode.quoted(key) + ":" + rendered
        }
        FileHandle.standardError.write(Data(("{" + fields.joined(separator: ",") + "}\n").utf8))
    }
}
