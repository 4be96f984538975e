import Dispatch
import Foundation
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// How a worker tells its coordinator what it is doing: JSON lines on stdout —
/// `{"event":"progress",…}` at most five times a second, `{"event":"log","message":…}`, and a
/// final `{"event":"done",…}`. Without `events`, only the human-readable lines are printed
/// (what a cluster job's log wants).
public final class WorkerEvents {
    public let enabled: Bool
    private var lastProgress: UInt64 = 0

    public init(enabled: Bool) { self.enabled = enabled }

    /// Cumulative counters of the task so far (throttled).
    public func progress(_ counters: KeyValuePairs<String, Int>) {
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard now - lastProgress >= 200_000_000 else { return }
        lastProgress = now
        emit(
            [("event", JSONNode(.string(Array("progress".utf8))))]
                + counters.map { ($0.key, JSONNode(.integer(Int64($0.value)))) })
    }

    public func log(_ message: String) {
        if enabled {
            emit([("event", JSONNode(.string(Array("log".utf8)))), ("message", JSONNode(.string(Array(message.utf8))))])
        } else {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
    }

    public func done(_ message: String, skipped: Bool, counters: KeyValuePairs<String, Int> = [:]) {
        if enabled {
            emit(
                [
                    ("event", JSONNode(.string(Array("done".utf8)))),
                    ("message", JSONNode(.string(Array(message.utf8)))),
                    ("skipped", JSONNode(.bool(skipped))),
                ] + counters.map { ($0.key, JSONNode(.integer(Int64($0.value)))) })
        } else {
            print(message)
        }
    }

    private func emit(_ members: [(String, JSONNode)]) {
        let line = JSONNode(.object(members)).serializedBytes(pretty: false) + [0x0A]
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
        guard let value = ProcessInfo.processInfo.environment["SLUICE_LIFELINE_FD"], let descriptor = Int32(value)
        else { return }
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let count = read(descriptor, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                // EOF: the coordinator has exited. (It never writes, so data means the same.)
                _exit(75)
            }
        }
        thread.start()
    }
}
