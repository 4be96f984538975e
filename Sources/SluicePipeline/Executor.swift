import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts and stops attempts of tasks — worker processes here, cluster jobs elsewhere. The
/// executor calls it on its queue and it reports back through the `deliver` closure it was
/// attached with, on that same queue.
public protocol TaskLauncher: AnyObject {
    /// Called once, before any launch.
    func attach(queue: DispatchQueue, deliver: @escaping (LauncherEvent) -> Void)
    /// Starts attempt `attempt` of `task`; it later delivers `.exited` exactly once for it.
    func launch(_ task: TaskSpec, attempt: Int)
    /// Sends `signal` to the task's running attempt, if any.
    func signal(_ task: TaskID, _ signal: Int32)
    /// Called once, after the run finished: release what `attach` set up.
    func detach()
    /// The run is failing: cancel attempts that have not started yet (only launchers that
    /// submit ahead have any); each still delivers its `.exited`.
    func withdrawUnstarted()
}

extension TaskLauncher {
    public func withdrawUnstarted() {}
}

/// What a launcher reports.
public enum LauncherEvent: Sendable {
    case message(TaskID, WorkerMessage)
    /// - Parameter lastWords: the end of the attempt's error output, indented.
    case exited(TaskID, TaskExit, TaskUsage, lastWords: String)
}

/// Runs a plan: feeds a `SchedulerStateMachine` with what the launcher, SIGINT/SIGTERM and a
/// timer report, and carries out the actions it returns. All of it happens on one serial queue;
/// `run` blocks the calling thread until the state machine finishes.
public final class Executor: @unchecked Sendable {
    // Invariant: `machine`, `result` and `sources` are touched only on `queue` once `run` starts.
    private let queue = DispatchQueue(label: "sluice.executor")
    private let launcher: any TaskLauncher
    private var machine: SchedulerStateMachine
    private let expand: (Stage) throws -> [TaskSpec]
    private let onEvent: (ExecutorEvent) -> Void
    private var sources: [any DispatchSourceProtocol] = []
    private var result: RunOutcome?
    private let done = DispatchSemaphore(value: 0)
    private let clock = DispatchTime.now().uptimeNanoseconds
    private let handlesSignals: Bool

    /// - Parameters:
    ///   - slots: tasks at once.
    ///   - expand: makes the tasks of an expanded stage once the task it follows has finished.
    ///   - handlesSignals: stop cleanly on SIGINT/SIGTERM (off in tests that drive a fake launcher).
    ///   - onEvent: called on the executor's queue for every event.
    public init(
        launcher: any TaskLauncher, slots: Int, retries: Int, expansions: [Stage: TaskID] = [:],
        launchPolicy: SchedulerStateMachine.LaunchPolicy = .whenReady, handlesSignals: Bool = true,
        expand: @escaping (Stage) throws -> [TaskSpec],
        onEvent: @escaping (ExecutorEvent) -> Void
    ) {
        self.launcher = launcher
        machine = SchedulerStateMachine(
            slots: slots, retries: retries, expansions: expansions, launchPolicy: launchPolicy)
        self.expand = expand
        self.onEvent = onEvent
        self.handlesSignals = handlesSignals
    }

    private var now: Double { Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9 }

    /// Runs `tasks` (and the stages expanded from them) to the end.
    /// - Returns: how the run ended, and every finished task's outcome.
    public func run(_ tasks: [TaskSpec]) -> (outcome: RunOutcome, tasks: [TaskOutcome]) {
        // The calling thread waits for the whole run: it is the one that takes SIGINT and
        // SIGTERM, even when the process started with them blocked (a mask survives exec, and
        // test harnesses and shells pass theirs on); the previous mask comes back at the end.
        var interrupts = sigset_t()
        var previousMask = sigset_t()
        sigemptyset(&interrupts)
        sigaddset(&interrupts, SIGINT)
        sigaddset(&interrupts, SIGTERM)
        if handlesSignals { pthread_sigmask(SIG_UNBLOCK, &interrupts, &previousMask) }
        defer { if handlesSignals { pthread_sigmask(SIG_SETMASK, &previousMask, nil) } }
        queue.async { [self] in
            launcher.attach(queue: queue) { [self] event in handle(event) }
            startSources()
            perform(machine.submit(tasks, now: now))
        }
        done.wait()
        return queue.sync {
            (result ?? .failed("internal: the executor stopped without an outcome"), Array(machine.outcomes.values))
        }
    }

    private func handle(_ event: LauncherEvent) {
        switch event {
        case .message(let id, let message):
            perform(machine.message(id, message))
        case .exited(let id, let exit, let usage, let lastWords):
            perform(machine.exited(id, exit, usage: usage, lastWords: lastWords, now: now))
        }
    }

    private func perform(_ actions: [SchedulerStateMachine.Action]) {
        for action in actions {
            switch action {
            case .launch(let task, let attempt):
                launcher.launch(task, attempt: attempt)
            case .signal(let id, let number):
                launcher.signal(id, number)
            case .withdrawUnstarted:
                launcher.withdrawUnstarted()
            case .emit(let event):
                onEvent(event)
            case .expand(let stage):
                do {
                    let tasks = try expand(stage)
                    perform(machine.submit(tasks, closing: stage, now: now))
                } catch {
                    perform(machine.expansionFailed(stage, "\(error)"))
                }
            case .finish(let outcome):
                finish(outcome)
            }
        }
    }

    private func startSources() {
        if handlesSignals, let descriptor = InterruptPipe.install() {
            // One read source for the whole run, on the self-pipe the signal handler writes to.
            let source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
            source.setEventHandler { [self] in
                var numbers = [UInt8](repeating: 0, count: 16)
                let count = numbers.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                for number in numbers.prefix(max(0, count)) { perform(machine.interrupt(Int32(number))) }
            }
            source.setCancelHandler { close(descriptor) }
            source.resume()
            sources.append(source)
        }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(200), repeating: .milliseconds(200))
        timer.setEventHandler { [self] in onEvent(.tick) }
        timer.resume()
        sources.append(timer)
    }

    private func finish(_ outcome: RunOutcome) {
        guard result == nil else { return }
        result = outcome
        for source in sources { source.cancel() }
        sources.removeAll()
        if handlesSignals { InterruptPipe.uninstall() }
        launcher.detach()
        done.signal()
    }
}

/// SIGINT and SIGTERM for the executor, through a self-pipe: the handler only `write`s the
/// signal's number (async-signal-safe), and the executor reads it from a read source. (libdispatch's
/// signal sources crashed its event loop when worker processes came and went — SIGCHLD in
/// SchedulerBenchmark on every run, SIGINT/SIGTERM in a 21-shard pipeline run — so none is used.)
enum InterruptPipe {
    // Invariant: set by `install` before the handler is, reset by `uninstall` after it is gone;
    // the handler only reads it.
    nonisolated(unsafe) static var writeEnd: Int32 = -1
    nonisolated(unsafe) static var readEnd: Int32 = -1
    // Invariant: written only by the early handler and by `install`, which runs after the
    // early handler has been replaced; a signal number fits in a machine word, written whole.
    nonisolated(unsafe) static var earlySignal: Int32 = 0

    /// Until the executor's handler is in place (planning a large corpus takes a while): a first
    /// SIGINT or SIGTERM is held and stops the run as soon as the executor starts — exit 130 or
    /// 143, workers stopped — instead of killing the coordinator; a second one kills it at once.
    static func holdEarlySignals() {
        earlySignal = 0
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            if InterruptPipe.earlySignal != 0 {
                signal(number, SIG_DFL)
                raise(number)
            }
            InterruptPipe.earlySignal = number
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for number in [SIGINT, SIGTERM] { sigaction(number, &action, nil) }
    }

    /// Restores the default handlers if the executor never took them over (the run failed
    /// before it started).
    static func releaseEarlySignals() {
        guard writeEnd < 0 else { return }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        earlySignal = 0
    }

    /// Installs the handlers; the read end of the pipe, or nil if no pipe could be made.
    static func install() -> Int32? {
        var fds: [Int32] = [0, 0]
        guard ProcessLauncher.makePipe(&fds) else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        (readEnd, writeEnd) = (fds[0], fds[1])
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(InterruptPipe.writeEnd, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for number in [SIGINT, SIGTERM] { sigaction(number, &action, nil) }
        // A signal held while the run was being planned reaches the executor now.
        if earlySignal != 0 {
            var byte = UInt8(truncatingIfNeeded: earlySignal)
            earlySignal = 0
            _ = write(writeEnd, &byte, 1)
        }
        return readEnd
    }

    /// Restores the default handlers and closes the pipe (its read source was cancelled first).
    static func uninstall() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        close(writeEnd)
        writeEnd = -1
        readEnd = -1
    }
}
