import CSluiceProcess
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Launches each attempt as a `sluice worker --task ID OUT --events` child process
/// (`posix_spawn`) — DESIGN.md's local executor.
///
/// Dispatch read sources deliver each child's exit (its pidfd becomes readable; then `wait4`
/// gives the status and the child's CPU time and peak RSS), its stdout (typed worker messages)
/// and its stderr (kept as a tail for failure messages). A pidfd names the process itself, so
/// no other process that reuses the pid is ever waited for or signalled. (A SIGCHLD signal
/// source was used before: libdispatch crashed in its event loop under fast process churn —
/// SchedulerBenchmark, 2,000 short tasks, reproduced it on every run.) Where `pidfd_open` is
/// missing (Linux < 5.3) the executor's 200 ms tick reaps instead. Children hold the read end
/// of a "lifeline" pipe: if the coordinator dies, even by `kill -9`, they see EOF and exit, so
/// no orphan keeps writing into the output.
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
    /// The children's environment as C strings, made once (freed by `detach`).
    private var environmentBlock: [UnsafeMutablePointer<CChar>?] = [nil]

    private struct Child {
        var task: TaskID
        var status: Int32?
        var usage = rusage()
        var openPipes = 2
        var stdoutBuffer: [UInt8] = []
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
    }

    /// Handlers capture the launcher strongly (a source outliving it would otherwise read freed
    /// memory); a source ends when its child does, and dropping `deliver` here breaks the cycle.
    public func detach() {
        deliver = { _ in }
        environmentBlock.forEach { free($0) }
        environmentBlock = [nil]
        if lifelineWrite >= 0 { close(lifelineWrite) }
        if lifelineRead >= 0 { close(lifelineRead) }
        (lifelineRead, lifelineWrite) = (-1, -1)
    }

    public func tick() {
        for pid in children.keys { reap(pid) }
    }

    public func signal(_ task: TaskID, _ signal: Int32) {
        // Only a child not yet waited for: its pid cannot have been reused.
        if let pid = pids[task], children[pid]?.status == nil { kill(pid, signal) }
    }

    public func launch(_ task: TaskSpec, attempt: Int) {
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
        // The children start with default signal handling, whatever the coordinator ignores.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

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
        children[pid] = Child(task: task.id)
        pids[task.id] = pid
        watch(output[0], pid: pid, isStdout: true)
        watch(errors[0], pid: pid, isStdout: false)
        watchExit(pid)
    }

    /// A read source on the child's pidfd, which becomes readable once it has exited.
    private func watchExit(_ pid: pid_t) {
        let descriptor = pidfd_open(pid, 0)
        guard descriptor >= 0 else { return }  // no pidfds here: `tick` reaps
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [self] in
            reap(pid)
            if children[pid]?.status != nil || children[pid] == nil { source.cancel() }
        }
        source.setCancelHandler { close(descriptor) }
        source.resume()
    }

    private func launchFailed(_ task: TaskID, _ message: String) {
        // Delivered after the launch call returns, as every other exit is.
        queue.async { [self] in deliver(.exited(task, .launchFailed(message), TaskUsage(), lastWords: "")) }
    }

    private func watch(_ descriptor: Int32, pid: pid_t, isStdout: Bool) {
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    received(chunk[0..<count], pid: pid, isStdout: isStdout)
                    continue
                }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
                source.cancel()  // EOF or error
                return
            }
        }
        source.setCancelHandler { [self] in
            close(descriptor)
            children[pid]?.openPipes -= 1
            complete(pid)
        }
        source.resume()
    }

    private func received(_ bytes: ArraySlice<UInt8>, pid: pid_t, isStdout: Bool) {
        guard var child = children[pid] else { return }
        if !isStdout {
            child.stderrTail += bytes
            if child.stderrTail.count > 4096 { child.stderrTail.removeFirst(child.stderrTail.count - 4096) }
            children[pid] = child
            return
        }
        child.stdoutBuffer += bytes
        var lines: [[UInt8]] = []
        var start = 0
        while let newline = child.stdoutBuffer[start...].firstIndex(of: 0x0A) {
            lines.append(Array(child.stdoutBuffer[start..<newline]))
            start = newline + 1
        }
        child.stdoutBuffer.removeFirst(start)
        children[pid] = child
        for line in lines {
            deliver(.message(child.task, WorkerMessage(line: line) ?? .log(String(decoding: line, as: UTF8.self))))
        }
    }

    /// Collects `pid`'s exit status and usage if it has exited (`wait4`, without blocking).
    private func reap(_ pid: pid_t) {
        guard children[pid]?.status == nil else { return }
        var status: Int32 = 0
        var usage = rusage()
        if wait4(pid, &status, WNOHANG, &usage) == pid {
            children[pid]?.status = status
            children[pid]?.usage = usage
            complete(pid)
        }
    }

    /// An attempt is over once its process has exited and both its pipes are drained.
    private func complete(_ pid: pid_t) {
        guard let child = children[pid], let status = child.status, child.openPipes == 0 else { return }
        children[pid] = nil
        pids[child.task] = nil
        let exit: TaskExit = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        let usage = TaskUsage(
            cpuSeconds: Double(child.usage.ru_utime.tv_sec) + Double(child.usage.ru_utime.tv_usec) / 1e6
                + Double(child.usage.ru_stime.tv_sec) + Double(child.usage.ru_stime.tv_usec) / 1e6,
            peakRSSBytes: Int(child.usage.ru_maxrss) * 1024)
        deliver(.exited(child.task, exit, usage, lastWords: Self.tail(child.stderrTail)))
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
