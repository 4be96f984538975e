/// How an attempt of a task ended.
public enum TaskExit: Sendable, Equatable {
    case exited(Int32)
    case signalled(Int32)
    /// The launcher could not start it (no such binary, no pipes, a refused submission).
    case launchFailed(String)
    /// The cluster ended it: a time limit, out of memory, a node failure (Slurm's job state and
    /// what it means). Retried like a crash.
    case ended(String)
    /// Someone outside the run cancelled it; not retried — the run stops and says so.
    case cancelled(String)

    var reason: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .signalled(let signal): "was killed by signal \(signal)"
        case .launchFailed(let message): "could not be started: \(message)"
        case .ended(let message): "was ended by the cluster: \(message)"
        case .cancelled(let message): "was cancelled: \(message)"
        }
    }
}

/// What an attempt cost, from the kernel's (or the cluster's) accounting.
public struct TaskUsage: Sendable, Equatable {
    public var cpuSeconds: Double
    public var peakRSSBytes: Int
    public init(cpuSeconds: Double = 0, peakRSSBytes: Int = 0) {
        self.cpuSeconds = cpuSeconds
        self.peakRSSBytes = peakRSSBytes
    }
}

/// One finished task: its attempts, when its last attempt ran, what it cost and reported.
public struct TaskOutcome: Sendable, Equatable {
    public var id: TaskID
    public var attempts: Int
    public var started: Double
    public var finished: Double
    public var usage: TaskUsage
    /// The worker's final report, when it sent one.
    public var report: TaskReport?
}

/// What an executor reports while it runs; delivered on its queue, in order.
public enum ExecutorEvent: Sendable, Equatable {
    /// Tasks added to the run (at the start, and when a stage is expanded).
    case planned([TaskSpec])
    case started(TaskSpec, attempt: Int)
    /// Cumulative counters of the task's current attempt.
    case progress(TaskSpec, [String: Int])
    case log(TaskSpec, String)
    case finished(TaskSpec, TaskOutcome)
    /// The attempt failed; the task will run again.
    case retrying(TaskSpec, attempt: Int, reason: String, lastWords: String)
    /// A heartbeat (about 5 per second) for redrawing progress.
    case tick
}

/// How a run ended.
public enum RunOutcome: Sendable, Equatable {
    case completed
    /// A task failed for good; `message` names it, what it reads and its last words.
    case failed(String)
    /// SIGINT or SIGTERM: running tasks were stopped, finished ones kept.
    case interrupted(signal: Int32, message: String)
}

/// The scheduling policy of a run, without any I/O: events in (tasks submitted, an attempt
/// exited, a worker's message, an interrupt), actions out (launch, signal, expand a stage, emit
/// an event, finish). The executors are thin shells that carry out the actions — processes for
/// local runs — so the policy is tested by driving this struct directly, in microseconds.
///
/// The policy: a task is ready once every task it needs has finished (and, for `needsEvery`,
/// its stage has been expanded and every task of it has finished) — or, with
/// `LaunchPolicy.submitAhead` (a cluster that enforces dependencies itself), once every task it
/// needs has been launched; at most `slots` run at once,
/// later stages first (so results flow through the pipeline early); a failed attempt is retried
/// up to `retries` times unless the worker said a retry cannot help (`WorkerExit.permanent`);
/// after a failure or an interrupt nothing new starts, and the run finishes once the running
/// tasks are gone.
public struct SchedulerStateMachine {
    /// When a task may be launched.
    public enum LaunchPolicy: Sendable, Equatable {
        /// Once what it needs has finished: processes on this machine.
        case whenReady
        /// Once what it needs has been launched: cluster jobs that wait for their dependencies
        /// in the cluster's queue. The launcher makes each attempt depend on the current attempts
        /// of its needs and re-points them when a need is launched again.
        case submitAhead
    }

    public enum Action: Sendable, Equatable {
        case launch(TaskSpec, attempt: Int)
        case signal(TaskID, Int32)
        /// The run is failing: withdraw attempts that have not started (submitted-ahead jobs
        /// still waiting in the queue); running ones finish as they would locally.
        case withdrawUnstarted
        /// The task this stage expands from has finished: read its record and `submit` the
        /// stage's tasks with `closing:` that stage.
        case expand(Stage)
        case emit(ExecutorEvent)
        case finish(RunOutcome)
    }

    private enum Phase: Equatable {
        case running
        case failing(String)
        case stopping(signal: Int32, message: String)
        case finished
    }

    private struct Attempt {
        var number: Int
        var started: Double
        var report: TaskReport?
    }

    public let slots: Int
    public let retries: Int
    public let launchPolicy: LaunchPolicy
    /// Stage → the task whose completion makes its tasks known.
    private let expansions: [Stage: TaskID]

    private var phase = Phase.running
    private var specs: [TaskID: TaskSpec] = [:]
    private var position: [TaskID: Int] = [:]
    private var unmet: [TaskID: Int] = [:]
    private var dependents: [TaskID: [TaskID]] = [:]
    private var stageWaiters: [Stage: [TaskID]] = [:]
    /// Tasks not yet released — finished (`whenReady`) or launched (`submitAhead`) — per stage.
    private var unreleasedInStage: [Stage: Int] = [:]
    private var released: Set<TaskID> = []
    private var withdrew = false
    private var openStages: Set<Stage>
    private var satisfiedStages: Set<Stage> = []
    private var awaitingExpansion: Set<Stage> = []
    private var ready = ReadyQueue()
    private var running: [TaskID: Attempt] = [:]
    private var attempts: [TaskID: Int] = [:]
    public private(set) var outcomes: [TaskID: TaskOutcome] = [:]

    /// - Parameters:
    ///   - slots: tasks at once (workers, or cluster jobs in flight).
    ///   - retries: further attempts after a failed one.
    ///   - expansions: stages whose tasks are submitted later, and the task that fixes them.
    public init(slots: Int, retries: Int, expansions: [Stage: TaskID] = [:], launchPolicy: LaunchPolicy = .whenReady) {
        self.slots = max(1, slots)
        self.retries = max(0, retries)
        self.launchPolicy = launchPolicy
        self.expansions = expansions
        openStages = Set(expansions.keys)
    }

    /// Whether the run has finished (a `.finish` action was given).
    public var isFinished: Bool { phase == .finished }

    // MARK: - Events in

    /// Adds tasks to the run; `closing` marks the expanded stage they complete.
    public mutating func submit(_ tasks: [TaskSpec], closing stage: Stage? = nil, now: Double) -> [Action] {
        guard phase != .finished else { return [] }
        let actions: [Action] = [.emit(.planned(tasks))]
        for task in tasks where specs[task.id] == nil {
            specs[task.id] = task
            position[task.id] = position.count
            unreleasedInStage[task.id.stage, default: 0] += 1
        }
        for task in tasks {
            var count = 0
            for need in task.needs where !released.contains(need) {
                guard specs[need] != nil else {
                    return actions
                        + finishIfIdle(
                            failing: "internal: task \(task.id) needs \(need), which is not in the plan")
                }
                dependents[need, default: []].append(task.id)
                count += 1
            }
            for stage in task.needsEvery where !satisfiedStages.contains(stage) {
                stageWaiters[stage, default: []].append(task.id)
                count += 1
            }
            unmet[task.id] = count
            if count == 0 { ready.push(task.id, stage: task.id.stage, position: position[task.id] ?? 0) }
        }
        if let stage {
            openStages.remove(stage)
            awaitingExpansion.remove(stage)
            satisfyStageIfDone(stage)
        }
        for stage in Set(tasks.map(\.id.stage)) { satisfyStageIfDone(stage) }
        return actions + schedule(now: now)
    }

    /// A worker's message during its attempt.
    public mutating func message(_ id: TaskID, _ message: WorkerMessage) -> [Action] {
        guard running[id] != nil, let spec = specs[id] else { return [] }
        switch message {
        case .progress(let counters): return [.emit(.progress(spec, counters))]
        case .log(let text): return [.emit(.log(spec, text))]
        case .done(let report):
            running[id]?.report = report
            return []
        }
    }

    /// An attempt is over.
    /// - Parameter lastWords: the end of its error output, for the failure message.
    public mutating func exited(
        _ id: TaskID, _ exit: TaskExit, usage: TaskUsage = TaskUsage(), lastWords: String = "", now: Double
    ) -> [Action] {
        guard let attempt = running.removeValue(forKey: id), let spec = specs[id] else { return [] }
        var actions: [Action] = []
        if exit == .exited(WorkerExit.done) {
            let outcome = TaskOutcome(
                id: id, attempts: attempt.number, started: attempt.started, finished: now, usage: usage,
                report: attempt.report)
            outcomes[id] = outcome
            actions.append(.emit(.finished(spec, outcome)))
            release(id)
            for (stage, after) in expansions where after == id && openStages.contains(stage) {
                awaitingExpansion.insert(stage)
                actions.append(.expand(stage))
            }
        } else if phase == .running {
            let tail = lastWords.isEmpty ? "" : ":\n" + lastWords
            switch exit {
            case .exited(WorkerExit.permanent):
                fail(spec, "failed; not retried, the same inputs would fail again" + tail)
            case .launchFailed, .cancelled:
                fail(spec, exit.reason)
            default:
                if attempt.number <= retries {
                    actions.append(
                        .emit(.retrying(spec, attempt: attempt.number, reason: exit.reason, lastWords: lastWords)))
                    ready.push(id, stage: id.stage, position: position[id] ?? 0)
                } else {
                    fail(
                        spec,
                        "\(exit.reason) on all \(attempt.number) attempt(s)"
                            + (lastWords.isEmpty ? "" : "; its last words:\n" + lastWords))
                }
            }
        }
        return actions + withdrawIfFailing() + schedule(now: now)
    }

    /// The expansion of `stage` could not be made (its record is unreadable).
    public mutating func expansionFailed(_ stage: Stage, _ message: String) -> [Action] {
        guard phase == .running else { return finishIfIdle() }
        awaitingExpansion.remove(stage)
        phase = .failing("cannot plan the \(stage) tasks: \(message)")
        return withdrawIfFailing() + finishIfIdle()
    }

    /// SIGINT or SIGTERM: stop the running tasks (SIGTERM; a second interrupt sends SIGKILL).
    public mutating func interrupt(_ signal: Int32) -> [Action] {
        switch phase {
        case .finished:
            return []
        case .stopping:
            return running.keys.sorted().map { .signal($0, 9) }
        case .running, .failing:
            let name = signal == 2 ? "SIGINT" : signal == 15 ? "SIGTERM" : "signal \(signal)"
            phase = .stopping(
                signal: signal,
                message: "interrupted by \(name); finished tasks are kept — run the same command again to resume")
            let stops = running.keys.sorted().map { Action.signal($0, 15) }
            return stops + finishIfIdle()
        }
    }

    // MARK: - Policy

    /// What `id` unblocks — its dependents, and its stage's `needsEvery` waiters once the whole
    /// stage is released — happens once: when it finishes, or when it is first launched ahead.
    private mutating func release(_ id: TaskID) {
        guard released.insert(id).inserted else { return }
        for dependent in dependents.removeValue(forKey: id) ?? [] { needMet(dependent) }
        unreleasedInStage[id.stage, default: 1] -= 1
        satisfyStageIfDone(id.stage)
    }

    private mutating func withdrawIfFailing() -> [Action] {
        guard launchPolicy == .submitAhead, case .failing = phase, !withdrew, !running.isEmpty else { return [] }
        withdrew = true
        return [.withdrawUnstarted]
    }

    private mutating func needMet(_ id: TaskID) {
        guard let count = unmet[id] else { return }
        unmet[id] = count - 1
        if count == 1 { ready.push(id, stage: id.stage, position: position[id] ?? 0) }
    }

    private mutating func satisfyStageIfDone(_ stage: Stage) {
        guard !openStages.contains(stage), !satisfiedStages.contains(stage), unreleasedInStage[stage, default: 0] == 0
        else { return }
        satisfiedStages.insert(stage)
        for waiter in stageWaiters.removeValue(forKey: stage) ?? [] { needMet(waiter) }
    }

    private mutating func fail(_ task: TaskSpec, _ message: String) {
        guard phase == .running else { return }
        phase = .failing(
            "task \(task.id) (\(task.readsSummary)) \(message)\nOther finished tasks are kept; fix the cause and run the same command again to resume."
        )
    }

    private mutating func schedule(now: Double) -> [Action] {
        var actions: [Action] = []
        while phase == .running && running.count < slots, let id = ready.pop() {
            guard let spec = specs[id], outcomes[id] == nil, running[id] == nil else { continue }
            let number = (attempts[id] ?? 0) + 1
            attempts[id] = number
            running[id] = Attempt(number: number, started: now)
            actions.append(.launch(spec, attempt: number))
            actions.append(.emit(.started(spec, attempt: number)))
            // Its dependents may be launched behind it; the queue pops them in this same loop.
            if launchPolicy == .submitAhead { release(id) }
        }
        return actions + finishIfIdle()
    }

    private mutating func finishIfIdle(failing message: String? = nil) -> [Action] {
        if let message, phase == .running { phase = .failing(message) }
        guard running.isEmpty else { return [] }
        switch phase {
        case .finished:
            return []
        case .failing(let message):
            phase = .finished
            return [.finish(.failed(message))]
        case .stopping(let signal, let message):
            phase = .finished
            return [.finish(.interrupted(signal: signal, message: message))]
        case .running:
            guard ready.isEmpty, awaitingExpansion.isEmpty else { return [] }
            if outcomes.count == specs.count && openStages.isEmpty {
                phase = .finished
                return [.finish(.completed)]
            }
            let stuck = specs.keys.filter { outcomes[$0] == nil }.sorted().prefix(5).map(\.description)
            phase = .finished
            return [
                .finish(
                    .failed(
                        "internal: tasks wait for tasks that are not in the plan: \(stuck.joined(separator: ", "))"
                            + (openStages.isEmpty ? "" : " (stages never expanded: \(openStages.sorted()))")))
            ]
        }
    }
}

/// Ready tasks, later stages first, then in plan order: a binary heap.
struct ReadyQueue {
    private var heap: [(key: Int, id: TaskID)] = []

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(_ id: TaskID, stage: Stage, position: Int) {
        // Smaller keys first: a later stage is more urgent, then the earlier position.
        heap.append(((Stage.allCases.count - stage.rank) << 40 | position, id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].key < heap[parent].key else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> TaskID? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && heap[left].key < heap[smallest].key { smallest = left }
            if right < heap.count && heap[right].key < heap[smallest].key { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return top.id
    }
}
