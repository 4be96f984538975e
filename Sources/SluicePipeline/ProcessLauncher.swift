import CSluiceProcess
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Launches each attempt as a `sluice worker --task ID OUT --events` child process
/// (`posix_spawn`) — DESIGN.md's local executor.
///
/// A `ChildMonitor` thread reports each child's stdout (typed worker messages), its stderr (the
/// last 4 KiB are kept for failure messages) and its exit (its pidfd becomes readable; `wait4`
/// gives the status and the child's CPU time and peak RSS). Stop signals go through a pidfd as
/// well, so a worker that has been waited for is never confused with another process that got
/// its pid. (libdispatch sources were used before and crashed its event loop under process
/// churn; see `ChildMonitor`.) Children hold the read end of a "lifeline" pipe: if the
/// coordinator dies, even by `kill -9`, they see EOF and exit, so no orphan keeps writing into
/// the output.
public final class ProcessLauncher: TaskLauncher, @unchecked Sendable {
    // Invariant: every `var` is touched only on `queue`, which `attach` sets before any use.
    public static let lifelineVariable = "SLUICE_LIFELINE_FD"

    private let executable: String
    private let arguments: (TaskSpec) -> [String]
    private let environment: [String: String]
    private var queue = DispatchQueue(label: "unused")
    private var deliver: (LauncherEvent) -> Void = { _ in }
    private var lifelineRead: Int32 = -1
    private var lifelineWrite: Int32 = -1
    private var monitor: ChildMonitor?
    /// The children's environment as C strings, made once (freed by `detach`).
    private var environmentBlock: [UnsafeMutablePointer<CChar>?] = [nil]

    private struct Child {
        var task: TaskID
        /// For signals; -1 where pidfds are not available.
        var pidfd: Int32
        var reader = WorkerMessageReader()
        var stderrTail: [UInt8] = []
    }
    private var children: [pid_t: Child] = [:]
    private var pids: [TaskID: pid_t] = [:]

    /// - Parameters:
    ///   - executable: the `sluice` binary.
    ///   - arguments: the arguments after it for a task.
    ///   - environment: variables added to the children's environment.
    public init(
        executable: String, environment: [String: String] = [:], arguments: @escaping (TaskSpec) -> [String]
    ) {
        self.executable = executable
        self.environment = environment
        self.arguments = arguments
    }

    public func attach(queue: DispatchQueue, deliver: @escaping (LauncherEvent) -> Void) {
        self.queue = queue
        self.deliver = deliver
        var variables = ProcessInfo.processInfo.environment
        variables[Self.lifelineVariable] = "3"
        for (key, value) in environment { variables[key] = value }
        environmentBlock = variables.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        var fds: [Int32] = [0, 0]
        if Self.makePipe(&fds) { (lifelineRead, lifelineWrite) = (fds[0], fds[1]) }
        monitor = ChildMonitor(queue: queue) { [self] event in
            switch event {
            case .output(let pid, let bytes, let isStdout): received(bytes, pid: pid, isStdout: isStdout)
            case .exited(let pid, let status, let usage): complete(pid, status: status, usage: usage)
            }
        }
    }

    /// Stops the monitor and drops `deliver` (which holds the executor): no cycle outlives the run.
    public func detach() {
        monitor?.stop()
        monitor = nil
        deliver = { _ in }
        environmentBlock.forEach { free($0) }
        environmentBlock = [nil]
        if lifelineWrite >= 0 { close(lifelineWrite) }
        if lifelineRead >= 0 { close(lifelineRead) }
        (lifelineRead, lifelineWrite) = (-1, -1)
        for child in children.values where child.pidfd >= 0 { close(child.pidfd) }
    }

    public func signal(_ task: TaskID, _ signal: Int32) {
        guard let pid = pids[task], let child = children[pid] else { return }
        if child.pidfd >= 0 {
            _ = pidfd_send_signal(child.pidfd, signal, nil, 0)  // ESRCH once it is gone: harmless
        } else {
            kill(pid, signal)
        }
    }

    public func launch(_ task: TaskSpec, attempt: Int) {
        guard let monitor else { return launchFailed(task.id, "the child monitor could not be started") }
        var output: [Int32] = [0, 0]
        var errors: [Int32] = [0, 0]
        guard lifelineRead >= 0, Self.makePipe(&output) else {
            return launchFailed(task.id, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        guard Self.makePipe(&errors) else {
            close(output[0])
            close(output[1])
            return launchFailed(task.id, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        posix_spawn_file_actions_adddup2(&actions, lifelineRead, 3)
        var attributes = Self.spawnAttributes(newProcessGroup: false)
        defer { posix_spawnattr_destroy(&attributes) }

        let argv = ([executable] + arguments(task)).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environmentBlock)
        close(output[1])
        close(errors[1])
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            return launchFailed(task.id, "cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        children[pid] = Child(task: task.id, pidfd: pidfd_open(pid, 0))
        pids[task.id] = pid
        monitor.watch(pid: pid, stdout: output[0], stderr: errors[0])
    }

    private func launchFailed(_ task: TaskID, _ message: String) {
        // Delivered after the launch call returns, as every other exit is.
        queue.async { [self] in deliver(.exited(task, .launchFailed(message), TaskUsage(), lastWords: "")) }
    }

    private func received(_ bytes: [UInt8], pid: pid_t, isStdout: Bool) {
        guard var child = children[pid] else { return }
        if !isStdout {
            child.stderrTail += bytes
            if child.stderrTail.count > 4096 { child.stderrTail.removeFirst(child.stderrTail.count - 4096) }
            children[pid] = child
            return
        }
        let messages = child.reader.messages(after: bytes)
        children[pid] = child
        for message in messages { deliver(.message(child.task, message)) }
    }

    /// An attempt is over: its process has exited and both its pipes are drained.
    private func complete(_ pid: pid_t, status: Int32, usage: rusage) {
        guard let child = children.removeValue(forKey: pid) else { return }
        pids[child.task] = nil
        if child.pidfd >= 0 { close(child.pidfd) }
        let exit: TaskExit = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        let cost = TaskUsage(
            cpuSeconds: Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6,
            peakRSSBytes: Int(usage.ru_maxrss) * 1024)
        deliver(.exited(child.task, exit, cost, lastWords: Self.tail(child.stderrTail)))
    }

    /// Attributes for `posix_spawn` (destroy them after use): the child starts with default
    /// SIGINT/SIGTERM handling and nothing blocked, whatever the coordinator catches and whatever
    /// the spawning (libdispatch) thread blocks — else a worker could sit out the SIGTERM that
    /// stops it; with `newProcessGroup`, in a group of its own, out of reach of a terminal's Ctrl-C.
    static func spawnAttributes(newProcessGroup: Bool) -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        return attributes
    }

    /// A close-on-exec pipe (spawns happen only on the executor's queue, so none can slip in
    /// between `pipe` and `fcntl`).
    static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// The last lines of a worker's stderr, indented.
    static func tail(_ bytes: [UInt8]) -> String {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        return lines.suffix(8).map { "    " + $0 }.joined(separator: "\n")
    }
}
