import CSluiceProcess
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Watches child processes from one thread with `poll(2)`: each child's stdout and stderr, and
/// its pidfd (readable once it has exited), reported to a serial queue in the order they happen.
///
/// Why not Dispatch read sources: libdispatch's epoll loop crashed (`_dispatch_event_loop_drain`)
/// when sources on fds that are closed and reused within milliseconds came and went — as every
/// worker's pipes are — in 1 of 3 runs of the 21-shard pipeline benchmark, and in every run of
/// SchedulerBenchmark with a SIGCHLD source. Here fds are opened, polled and closed by one thread
/// that owns them, so no fd number is reused while anything still refers to it.
final class ChildMonitor: @unchecked Sendable {
    // Invariant: `added` and `stopping` are guarded by `lock`; everything else belongs to the
    // monitor thread alone.
    enum Event {
        case output(pid_t, [UInt8], isStdout: Bool)
        /// The child has exited and both its pipes are at end of file.
        case exited(pid_t, status: Int32, usage: rusage)
    }

    private struct Watched {
        var pid: pid_t
        var stdout: Int32
        var stderr: Int32
        /// -1 where pidfds are not available (Linux < 5.3): `wait4` is polled instead.
        var pidfd: Int32
        var status: Int32?
        var usage = rusage()
    }

    private let lock = NSLock()
    private var added: [Watched] = []
    private var stopping = false
    private var watched: [Watched] = []
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let queue: DispatchQueue
    private let deliver: (Event) -> Void
    private var thread: Thread?

    /// - Parameter deliver: called on `queue` for every event, in order.
    init?(queue: DispatchQueue, deliver: @escaping (Event) -> Void) {
        var fds: [Int32] = [0, 0]
        guard ProcessLauncher.makePipe(&fds) else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        (wakeRead, wakeWrite) = (fds[0], fds[1])
        self.queue = queue
        self.deliver = deliver
        let thread = Thread { [self] in run() }
        thread.name = "sluice.children"
        self.thread = thread
        thread.start()
    }

    /// Starts watching a child; the monitor owns (and closes) `stdout` and `stderr` from now on.
    func watch(pid: pid_t, stdout: Int32, stderr: Int32) {
        for fd in [stdout, stderr] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let pidfd = pidfd_open(pid, 0)
        lock.withLock { added.append(Watched(pid: pid, stdout: stdout, stderr: stderr, pidfd: pidfd)) }
        wake()
    }

    /// Ends the thread; children still running are no longer watched (nor waited for).
    func stop() {
        lock.withLock { stopping = true }
        wake()
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let (new, stop) = lock.withLock { () -> ([Watched], Bool) in
                defer { added.removeAll() }
                return (added, stopping)
            }
            watched += new
            if stop { break }
            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            for child in watched {
                for fd in [child.stdout, child.stderr, child.pidfd] where fd >= 0 {
                    fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                }
            }
            // Without pidfds, exits are found by polling wait4 every 200 ms.
            let timeout: Int32 = watched.contains { $0.pidfd < 0 && $0.status == nil } ? 200 : -1
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { break }
            var drain: UInt8 = 0
            while read(wakeRead, &drain, 1) > 0 {}
            let readable = Set(fds.filter { $0.revents != 0 }.map(\.fd))
            for index in watched.indices {
                for isStdout in [true, false] {
                    let fd = isStdout ? watched[index].stdout : watched[index].stderr
                    guard fd >= 0, readable.contains(fd) else { continue }
                    if !drainPipe(fd, pid: watched[index].pid, isStdout: isStdout, buffer: &buffer) {
                        close(fd)
                        if isStdout { watched[index].stdout = -1 } else { watched[index].stderr = -1 }
                    }
                }
                if watched[index].status == nil
                    && (watched[index].pidfd < 0 || readable.contains(watched[index].pidfd))
                {
                    var status: Int32 = 0
                    var usage = rusage()
                    if wait4(watched[index].pid, &status, WNOHANG, &usage) == watched[index].pid {
                        watched[index].status = status
                        watched[index].usage = usage
                        if watched[index].pidfd >= 0 { close(watched[index].pidfd) }
                        watched[index].pidfd = -1
                    }
                }
            }
            // A child is over once it has exited and both its pipes are drained.
            watched.removeAll { child in
                guard let status = child.status, child.stdout < 0, child.stderr < 0 else { return false }
                let (pid, usage) = (child.pid, child.usage)
                queue.async { [self] in deliver(.exited(pid, status: status, usage: usage)) }
                return true
            }
        }
        for child in watched {
            for fd in [child.stdout, child.stderr, child.pidfd] where fd >= 0 { close(fd) }
        }
        close(wakeRead)
        close(wakeWrite)
    }

    /// Reads what `fd` holds now and delivers it; false at end of file (or on an error).
    private func drainPipe(_ fd: Int32, pid: pid_t, isStdout: Bool, buffer: inout [UInt8]) -> Bool {
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                let bytes = Array(buffer[0..<count])
                queue.async { [self] in deliver(.output(pid, bytes, isStdout: isStdout)) }
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return true }
            return false
        }
    }
}
