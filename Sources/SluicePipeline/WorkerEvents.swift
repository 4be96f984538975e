import Dispatch
import Foundation
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// What a worker tells its coordinator, one JSON line each on stdout:
/// `{"event":"progress","bytes":…}`, `{"event":"log","message":…}` and, last,
/// `{"event":"done","message":…,"reused":…,…counters}`.
public enum WorkerMessage: Sendable, Equatable {
    /// Cumulative counters of the task so far.
    case progress([String: Int])
    case log(String)
    case done(TaskReport)

    public var line: [UInt8] {
        func string(_ text: String) -> JSONNode { JSONNode(.string(Array(text.utf8))) }
        func counters(_ values: [String: Int]) -> [(String, JSONNode)] {
            values.sorted { $0.key < $1.key }.map { ($0.key, JSONNode(.integer(Int64($0.value)))) }
        }
        let members: [(String, JSONNode)]
        switch self {
        case .progress(let values): members = [("event", string("progress"))] + counters(values)
        case .log(let message): members = [("event", string("log")), ("message", string(message))]
        case .done(let report):
            members =
                [
                    ("event", string("done")), ("message", string(report.message)),
                    ("reused", JSONNode(.bool(report.reused))),
                ]
                + counters(report.counters)
        }
        return JSONNode(.object(members)).serializedBytes(pretty: false) + [0x0A]
    }

    /// Parses one line; nil for anything that is not a message (plain output is a log line).
    public init?(line: some Collection<UInt8>) {
        guard let node = try? JSONNode.parse(Array(line)), let kind = node["event"]?.string else { return nil }
        var values: [String: Int] = [:]
        for member in node.members ?? [] {
            if case .integer(let value) = member.value.value { values[member.key] = Int(value) }
        }
        switch kind {
        case "progress": self = .progress(values)
        case "log": self = .log(node["message"]?.string ?? "")
        case "done":
            self = .done(
                TaskReport(node["message"]?.string ?? "", reused: node["reused"]?.bool ?? false, counters: values))
        default: return nil
        }
    }
}

/// A worker's message stream as it arrives in pieces (its stdout through a pipe, or its events
/// file on a cluster): whole lines become messages, a plain line a `.log`; a partial line waits
/// for the rest.
struct WorkerMessageReader {
    private var pending: [UInt8] = []

    mutating func messages(after bytes: [UInt8]) -> [WorkerMessage] {
        pending += bytes
        var messages: [WorkerMessage] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: 0x0A) {
            let line = pending[start..<newline]
            messages.append(WorkerMessage(line: line) ?? .log(String(decoding: line, as: UTF8.self)))
            start = newline + 1
        }
        pending.removeFirst(start)
        return messages
    }
}

/// How a worker reports: typed messages on stdout for a coordinator (`--events`), or
/// human-readable lines (what a cluster job's log wants).
public final class WorkerEvents {
    public let enabled: Bool
    private var lastProgress: UInt64 = 0

    public init(enabled: Bool) { self.enabled = enabled }

    /// Cumulative counters of the task so far (at most five times a second).
    public func progress(_ counters: [String: Int]) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastProgress >= 200_000_000 else { return }
        lastProgress = now
        send(.progress(counters))
    }

    public func log(_ message: String) {
        if enabled { send(.log(message)) } else { FileHandle.standardError.write(Data((message + "\n").utf8)) }
    }

    public func done(_ report: TaskReport) {
        if enabled { send(.done(report)) } else { print(report.message) }
    }

    private func send(_ message: WorkerMessage) {
        let line = message.line
        line.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = write(1, base + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// In a worker started by the local executor: exit as soon as the coordinator is gone
    /// (its end of the lifeline pipe closes), so a killed coordinator leaves no orphans.
    public static func watchLifeline() {
        guard let value = ProcessInfo.processInfo.environment[ProcessLauncher.lifelineVariable],
            let descriptor = Int32(value)
        else { return }
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(descriptor, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                // EOF: the coordinator has exited. (It never writes, so data means the same.)
                _exit(WorkerExit.retryable)
            }
        }
        thread.start()
    }
}
