import Dispatch
import Foundation
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// One unit of work for an executor: a `sluice worker` command line and the tasks it needs.
public struct ExecutorTask: Sendable {
    /// Stable name, e.g. `tokenize/part-00003`.
    public var id: String
    public var stage: String
    /// Arguments after the worker executable.
    public var arguments: [String]
    /// Ids of the tasks whose outputs this one reads.
    public var needs: [String]
    /// What it reads, for failure messages (input files, a docs part, …).
    public var inputs: String
    /// Its share of its stage's work (input bytes, batches), for progress and ETA.
    public var weight: Int

    public init(id: String, stage: String, arguments: [String], needs: [String], inputs: String, weight: Int = 0) {
        self.id = id
        self.stage = stage
        self.arguments = arguments
        self.needs = needs
        self.inputs = inputs
        self.weight = weight
    }
}

/// What one finished task cost (from the kernel's accounting of its process).
public struct TaskOutcome: Sendable {
    public var id: String
    public var stage: String
    public var attempts: Int
    public var started: Double
    public var finished: Double
    public var cpuSeconds: Double
    public var peakRSSBytes: Int
    /// The worker's final event (`{"event":"done",…}`), if it sent one.
    public var done: JSONNode?
}

/// What an executor reports while it runs; delivered on its queue, in order.
public enum ExecutorEvent: Sendable {
    /// The tasks of this `run`, before any starts.
    case planned([ExecutorTask])
    case started(ExecutorTask, attempt: Int)
    /// A worker's `{"event":"progress",…}` line: cumulative counters of the task's attempt.
    case progress(ExecutorTask, JSONNode)
    /// A worker's `{"event":"log","message":…}` line.
    case log(ExecutorTask, String)
    case finished(ExecutorTask, TaskOutcome)
    /// The attempt failed; it will be retried.
    case retrying(ExecutorTask, attempt: Int, reason: String, stderrTail: String)
    /// A heartbeat (about 5 per second) for redrawing progress.
    case tick
}

/// Why a run stopped early.
public struct ExecutorFailure: Error, CustomStringConvertible {
    public var description: String
    /// Set when SIGINT/SIGTERM stopped the run.
    public var signal: Int32?
}

/// Runs tasks as child processes, at most `workers` at a time, each as soon as the tasks it
/// needs are done (so stages overlap) — DESIGN.md's local executor.
///
/// All scheduler state lives on one serial DispatchQueue. Dispatch sources deliver child exits
/// (SIGCHLD, then `wait4` for the status and the child's CPU time and peak RSS), each child's
/// stdout (JSON-line events) and stderr (kept as a tail for failure messages), and SIGINT /
/// SIGTERM, which stop the children and end the run with outputs left resumable. Children hold
/// the read end of a "lifeline" pipe: if the coordinator dies, even by `kill -9`, they see EOF
/// and exit, so no orphan keeps writing into the output.
public final class LocalExecutor: @unchecked Sendable {
    // Invariant: every `var` below is touched only on `queue` (after `run` starts).
    private let executable: String
    private let workers: Int
    private let retries: Int
    private let onEvent: (ExecutorEvent) -> Void
    private let queue = DispatchQueue(label: "sluice.executor")

    private struct Running {
        var task: ExecutorTask
        var attempt: Int
        var pid: pid_t
        var started: Double
        var status: Int32?
        var usage = rusage()
        var openPipes = 2
        var stdoutBuffer: [UInt8] = []
        var stderrTail: [UInt8] = []
        var done: JSONNode?
    }

    private var pending: [ExecutorTask] = []
    private var attempts: [String: Int] = [:]
    private var finished: [String: TaskOutcome] = [:]
    private var running: [pid_t: Running] = [:]
    private var failure: ExecutorFailure?
    private var sources: [any DispatchSourceProtocol] = []
    private var lifelineWrite: Int32 = -1
    private var lifelineRead: Int32 = -1
    private let clock = DispatchTime.now().uptimeNanoseconds
    private var completion: DispatchSemaphore?
    private var extraEnvironment: [String: String]

    /// - Parameters:
    ///   - executable: the `sluice` binary (workers run `executable worker …`).
    ///   - environment: variables added to the children's environment.
    ///   - onEvent: called on the executor's queue for every event.
    public init(
        executable: String, workers: Int, retries: Int, environment: [String: String] = [:],
        onEvent: @escaping (ExecutorEvent) -> Void
    ) {
        self.executable = executable
        self.workers = max(1, workers)
        self.retries = max(0, retries)
        self.extraEnvironment = environment
        self.onEvent = onEvent
    }

    private var now: Double { Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9 }

    /// Runs `tasks` — their dependencies must be among them or done by an earlier `run` of this
    /// executor — and returns the outcomes of every task it has finished so far.
    /// - Throws: `ExecutorFailure` after a task failed on every attempt (once the other running
    ///   tasks have finished) or after SIGINT/SIGTERM (once the children have stopped).
    public func run(_ tasks: [ExecutorTask]) throws -> [String: TaskOutcome] {
        let done = DispatchSemaphore(value: 0)
        queue.sync {
            pending = tasks
            failure = nil
            completion = done
            onEvent(.planned(tasks))
            startSources()
            schedule()
        }
        done.wait()
        return try queue.sync {
            for source in sources { source.cancel() }
            sources.removeAll()
            close(lifelineWrite)
            close(lifelineRead)
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
            if let failure { throw failure }
            return finished
        }
    }

    private func startSources() {
        var fds: [Int32] = [0, 0]
        _ = Self.makePipe(&fds)
        (lifelineRead, lifelineWrite) = (fds[0], fds[1])
        let child = DispatchSource.makeSignalSource(signal: SIGCHLD, queue: queue)
        child.setEventHandler { [unowned self] in reap() }
        child.resume()
        sources.append(child)
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [unowned self] in interrupt(number) }
            source.resume()
            sources.append(source)
        }
        // A heartbeat for progress, and a safety net should a SIGCHLD be coalesced away.
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        timer.setEventHandler { [unowned self] in
            reap()
            onEvent(.tick)
        }
        timer.resume()
        sources.append(timer)
    }

    private func interrupt(_ number: Int32) {
        if failure == nil {
            failure = ExecutorFailure(
                description:
                    "interrupted by \(number == SIGINT ? "SIGINT" : "SIGTERM"); finished tasks are kept — run the same command again to resume",
                signal: number)
        }
        pending.removeAll()
        for pid in running.keys { kill(pid, SIGTERM) }
        finishIfIdle()
    }

    private func schedule() {
        guard failure == nil else { return finishIfIdle() }
        var index = 0
        while running.count < workers && index < pending.count {
            let task = pending[index]
            if task.needs.allSatisfy({ finished[$0] != nil }) {
                pending.remove(at: index)
                start(task)
            } else {
                index += 1
            }
        }
        if running.isEmpty && !pending.isEmpty && failure == nil {
            let stuck = pending.map(\.id).prefix(5).joined(separator: ", ")
            failure = ExecutorFailure(
                description: "internal: tasks wait for tasks that are not in the plan: \(stuck)", signal: nil)
            pending.removeAll()
        }
        finishIfIdle()
    }

    private func finishIfIdle() {
        if running.isEmpty && (pending.isEmpty || failure != nil), let completion {
            self.completion = nil
            completion.signal()
        }
    }

    private func start(_ task: ExecutorTask) {
        let attempt = (attempts[task.id] ?? 0) + 1
        attempts[task.id] = attempt
        var output: [Int32] = [0, 0]
        var errors: [Int32] = [0, 0]
        guard Self.makePipe(&output), Self.makePipe(&errors) else {
            return fail(task, "cannot create a pipe: \(String(cString: strerror(errno)))")
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

        let arguments = [executable] + task.arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_LIFELINE_FD"] = "3"
        for (key, value) in extraEnvironment { environment[key] = value }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(output[1])
        close(errors[1])
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            return fail(task, "cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        running[pid] = Running(task: task, attempt: attempt, pid: pid, started: now)
        watch(output[0], pid: pid, isStdout: true)
        watch(errors[0], pid: pid, isStdout: false)
        onEvent(.started(task, attempt: attempt))
    }

    private func watch(_ descriptor: Int32, pid: pid_t, isStdout: Bool) {
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler { [unowned self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    received(Array(chunk[0..<count]), pid: pid, isStdout: isStdout)
                    continue
                }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
                source.cancel()  // EOF or error
                return
            }
        }
        source.setCancelHandler { [unowned self] in
            close(descriptor)
            running[pid]?.openPipes -= 1
            complete(pid)
        }
        source.resume()
    }

    private func received(_ bytes: [UInt8], pid: pid_t, isStdout: Bool) {
        guard var state = running[pid] else { return }
        if !isStdout {
            state.stderrTail += bytes
            if state.stderrTail.count > 4096 { state.stderrTail.removeFirst(state.stderrTail.count - 4096) }
            running[pid] = state
            return
        }
        state.stdoutBuffer += bytes
        var lines: [[UInt8]] = []
        while let newline = state.stdoutBuffer.firstIndex(of: 0x0A) {
            lines.append(Array(state.stdoutBuffer[..<newline]))
            state.stdoutBuffer.removeSubrange(...newline)
        }
        running[pid] = state
        for line in lines {
            guard let event = try? JSONNode.parse(line), let kind = event["event"]?.string else {
                onEvent(.log(state.task, String(decoding: line, as: UTF8.self)))
                continue
            }
            switch kind {
            case "progress": onEvent(.progress(state.task, event))
            case "log": onEvent(.log(state.task, event["message"]?.string ?? ""))
            case "done": running[pid]?.done = event
            default: break
            }
        }
    }

    private func reap() {
        for pid in running.keys where running[pid]?.status == nil {
            var status: Int32 = 0
            var usage = rusage()
            let result = wait4(pid, &status, WNOHANG, &usage)
            if result == pid {
                running[pid]?.status = status
                running[pid]?.usage = usage
                complete(pid)
            }
        }
    }

    /// A task is over once its process has exited and both its pipes are drained.
    private func complete(_ pid: pid_t) {
        guard let state = running[pid], let status = state.status, state.openPipes == 0 else { return }
        running[pid] = nil
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        let signalNumber = status & 0x7f
        if exited && code == 0 {
            let cpu =
                Double(state.usage.ru_utime.tv_sec) + Double(state.usage.ru_utime.tv_usec) / 1e6
                + Double(state.usage.ru_stime.tv_sec) + Double(state.usage.ru_stime.tv_usec) / 1e6
            let outcome = TaskOutcome(
                id: state.task.id, stage: state.task.stage, attempts: state.attempt, started: state.started,
                finished: now, cpuSeconds: cpu, peakRSSBytes: Int(state.usage.ru_maxrss) * 1024, done: state.done)
            finished[state.task.id] = outcome
            onEvent(.finished(state.task, outcome))
        } else if failure == nil {
            let reason = exited ? "exited with status \(code)" : "was killed by signal \(signalNumber)"
            let tail = Self.tail(state.stderrTail)
            if exited && code == Self.permanentFailureStatus {
                fail(
                    state.task,
                    "failed; not retried, the same inputs would fail again" + (tail.isEmpty ? "" : ":\n" + tail))
            } else if state.attempt <= retries {
                onEvent(.retrying(state.task, attempt: state.attempt, reason: reason, stderrTail: tail))
                pending.insert(state.task, at: 0)
            } else {
                fail(
                    state.task,
                    "\(reason) on all \(state.attempt) attempt(s)" + (tail.isEmpty ? "" : "; its last words:\n" + tail))
            }
        }
        schedule()
    }

    private func fail(_ task: ExecutorTask, _ message: String) {
        if failure == nil {
            failure = ExecutorFailure(
                description:
                    "task \(task.id) (\(task.inputs)) \(message)\nOther finished tasks are kept; fix the cause and run the same command again to resume.",
                signal: nil)
        }
        pending.removeAll()
    }

    /// A close-on-exec pipe (spawns happen only on the executor's queue, so none can slip in
    /// between `pipe` and `fcntl`).
    static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    /// A worker's exit status for failures that a retry cannot fix — bad input under
    /// `on_bad_input: "fail"`, a vocabulary that does not load, too few pairs to train.
    /// (I/O errors, crashes and signals are retried.)
    public static let permanentFailureStatus: Int32 = 65

    /// The last lines of a worker's stderr, indented.
    static func tail(_ bytes: [UInt8]) -> String {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        return lines.suffix(8).map { "    " + $0 }.joined(separator: "\n")
    }
}
