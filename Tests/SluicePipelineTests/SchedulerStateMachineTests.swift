import Dispatch
import Foundation
import SluicePipeline
import Testing

/// A plan shaped like a real run's: ingest and tokenize per part, the tokenizer, the window,
/// materialize expanded from the window, finalize after every task.
func samplePlan(parts: Int) -> [TaskSpec] {
    var tasks = (0..<parts).map { TaskSpec(id: TaskID(.ingest, $0), reads: ["input-\($0).txt"]) }
    tasks.append(TaskSpec(id: .tokenizer, reads: ["gpt2.tiktoken"]))
    tasks += (0..<parts).map {
        TaskSpec(id: TaskID(.tokenize, $0), needs: [TaskID(.ingest, $0), .tokenizer], reads: ["docs/part-\($0).lz4"])
    }
    tasks.append(TaskSpec(id: .window, needs: (0..<parts).map { TaskID(.tokenize, $0) }, reads: ["tokens/"]))
    tasks.append(
        TaskSpec(
            id: .finalize, needs: (0..<parts).map { TaskID(.ingest, $0) } + [.window], needsEvery: [.materialize],
            reads: ["the completion records"]))
    return tasks
}

func shards(_ count: Int) -> [TaskSpec] {
    (0..<count).map { TaskSpec(id: TaskID(.materialize, $0), needs: [.window], reads: ["batches"]) }
}

/// Drives a state machine the way an executor does, with every attempt's fate decided by the test.
struct Driver {
    var machine: SchedulerStateMachine
    var running: [TaskID] = []
    var launches: [(TaskID, Int)] = []
    var signals: [(TaskID, Int32)] = []
    var events: [ExecutorEvent] = []
    var expansions: [Stage] = []
    var withdrawals = 0
    var outcome: RunOutcome?
    var now = 0.0

    init(
        slots: Int, retries: Int = 2, expands: Bool = true,
        launchPolicy: SchedulerStateMachine.LaunchPolicy = .whenReady
    ) {
        machine = SchedulerStateMachine(
            slots: slots, retries: retries, expansions: expands ? [.materialize: .window] : [:],
            launchPolicy: launchPolicy)
    }

    mutating func apply(_ actions: [SchedulerStateMachine.Action]) {
        for action in actions {
            #expect(outcome == nil, "an action after .finish: \(action)")
            switch action {
            case .launch(let task, let attempt):
                running.append(task.id)
                launches.append((task.id, attempt))
            case .signal(let id, let number): signals.append((id, number))
            case .emit(let event): events.append(event)
            case .expand(let stage): expansions.append(stage)
            case .withdrawUnstarted: withdrawals += 1
            case .finish(let result): outcome = result
            }
        }
    }

    mutating func submit(_ tasks: [TaskSpec], closing: Stage? = nil) {
        apply(machine.submit(tasks, closing: closing, now: now))
    }

    mutating func exit(_ id: TaskID, _ exit: TaskExit = .exited(0), reused: Bool = false, lastWords: String = "") {
        now += 1
        running.removeAll { $0 == id }
        if exit == .exited(0) { apply(machine.message(id, .done(TaskReport("\(id) done", reused: reused)))) }
        apply(
            machine.exited(
                id, exit, usage: TaskUsage(cpuSeconds: 1, peakRSSBytes: 1 << 20), lastWords: lastWords, now: now))
    }

    /// Ends every launched attempt as stopped; the run's failure message ("" if it did not fail).
    mutating func failureAfterStopping() -> String {
        for id in running { exit(id, .signalled(15)) }
        guard case .failed(let message)? = outcome else {
            Issue.record("expected a failure, got \(String(describing: outcome))")
            return ""
        }
        return message
    }

    /// Finishes running tasks, first launched first, until none runs; expands materialize into `shardCount`.
    mutating func runToEnd(shardCount: Int = 3) {
        while outcome == nil {
            if let stage = expansions.popLast() {
                submit(shards(shardCount), closing: stage)
                continue
            }
            guard let next = running.first else { break }
            exit(next)
        }
    }
}

@Suite("scheduler state machine (no processes)")
struct SchedulerStateMachineTests {
    @Test("tasks start only after what they need; never more than the slots; later stages first")
    func dependenciesAndSlots() {
        var driver = Driver(slots: 2)
        driver.submit(samplePlan(parts: 3))
        // The tokenizer (a later stage) goes before the ingest tasks that do not need it.
        #expect(driver.launches.map(\.0) == [.tokenizer, TaskID(.ingest, 0)])
        var finishedAt: [TaskID: Int] = [:]
        var startedAt: [TaskID: Int] = [:]
        var step = 0
        while driver.outcome == nil {
            step += 1
            #expect(driver.running.count <= 2)
            for (id, _) in driver.launches where startedAt[id] == nil { startedAt[id] = step }
            if let stage = driver.expansions.popLast() {
                driver.submit(shards(3), closing: stage)
                continue
            }
            guard let next = driver.running.first else { break }
            driver.exit(next)
            finishedAt[next] = step
        }
        #expect(driver.outcome == .completed)
        let plan = samplePlan(parts: 3) + shards(3)
        for task in plan {
            let started = startedAt[task.id] ?? .max
            for need in task.needs { #expect(finishedAt[need] ?? .max < started, "\(task.id) before \(need)") }
        }
        // finalize waited for every materialize shard, which the plan did not list.
        let lastShard = (0..<3).compactMap { finishedAt[TaskID(.materialize, $0)] }.max() ?? .max
        #expect(lastShard < startedAt[.finalize] ?? 0)
        #expect(driver.machine.outcomes.count == plan.count)
        #expect(driver.launches.count == plan.count)
    }

    @Test("the window's completion asks for the expansion; an empty expansion still lets finalize run")
    func emptyExpansion() {
        var driver = Driver(slots: 4)
        driver.submit(samplePlan(parts: 1))
        driver.runToEnd(shardCount: 0)
        #expect(driver.outcome == .completed)
        #expect(driver.launches.last?.0 == .finalize)
        #expect(!driver.launches.contains { $0.0.stage == .materialize })
    }

    @Test("a crashed attempt is retried up to the limit, then the run fails naming the task, its reads and last words")
    func retriesThenFails() {
        var driver = Driver(slots: 1, retries: 2)
        driver.submit([TaskSpec(id: TaskID(.ingest, 0), reads: ["a.txt"]), TaskSpec(id: TaskID(.ingest, 1))])
        let id = TaskID(.ingest, 0)
        driver.exit(id, .signalled(9), lastWords: "    segfault")
        driver.exit(id, .exited(75))
        #expect(driver.launches.filter { $0.0 == id }.map(\.1) == [1, 2, 3])
        let retries = driver.events.compactMap { event -> Int? in
            if case .retrying(let task, let attempt, _, _) = event, task.id == id { return attempt }
            return nil
        }
        #expect(retries == [1, 2])
        driver.exit(id, .signalled(9), lastWords: "    segfault again")
        guard case .failed(let message) = driver.outcome else {
            Issue.record("expected a failure, got \(String(describing: driver.outcome))")
            return
        }
        #expect(message.contains("task ingest/part-00000 (reads a.txt) was killed by signal 9 on all 3 attempt(s)"))
        #expect(message.contains("segfault again"))
        #expect(!driver.launches.contains { $0.0 == TaskID(.ingest, 1) }, "nothing new starts after a failure")
    }

    @Test("a permanent failure (exit 65) is not retried; running tasks finish before the run ends")
    func permanentFailure() {
        var driver = Driver(slots: 2)
        driver.submit([
            TaskSpec(id: TaskID(.ingest, 0)), TaskSpec(id: TaskID(.ingest, 1)), TaskSpec(id: TaskID(.ingest, 2)),
        ])
        driver.exit(TaskID(.ingest, 0), .exited(WorkerExit.permanent), lastWords: "    sluice: a.jsonl:2: bad line")
        #expect(driver.outcome == nil, "waits for the running task")
        #expect(driver.launches.count == 2)
        driver.exit(TaskID(.ingest, 1))
        guard case .failed(let message) = driver.outcome else {
            Issue.record("expected a failure")
            return
        }
        #expect(message.contains("not retried, the same inputs would fail again"))
        #expect(message.contains("a.jsonl:2"))
        #expect(driver.machine.outcomes[TaskID(.ingest, 1)] != nil, "the other task's work is kept")
    }

    @Test("a task that can never be launched fails the run at once")
    func launchFailure() {
        var driver = Driver(slots: 1)
        driver.submit([TaskSpec(id: TaskID(.ingest, 0))])
        driver.exit(TaskID(.ingest, 0), .launchFailed("cannot start /nope: No such file or directory"))
        guard case .failed(let message) = driver.outcome else {
            Issue.record("expected a failure")
            return
        }
        #expect(message.contains("could not be started: cannot start /nope"))
        #expect(driver.launches.count == 1)
    }

    @Test(
        "an interrupt in any stage stops its running tasks with SIGTERM, starts nothing new and ends interrupted",
        arguments: [Stage.ingest, .tokenizer, .tokenize, .window, .materialize, .finalize])
    func interruptInEveryStage(stage: Stage) {
        var driver = Driver(slots: 2)
        driver.submit(samplePlan(parts: 3))
        while !driver.running.contains(where: { $0.stage == stage }) {
            if let expanded = driver.expansions.popLast() {
                driver.submit(shards(3), closing: expanded)
                continue
            }
            guard let next = driver.running.first(where: { $0.stage != stage }) else {
                Issue.record("\(stage) never ran")
                return
            }
            driver.exit(next)
        }
        let launched = driver.launches.count
        let running = driver.running
        driver.apply(driver.machine.interrupt(2))
        #expect(driver.signals.map(\.0).sorted() == running.sorted())
        #expect(driver.signals.allSatisfy { $0.1 == 15 })
        #expect(driver.outcome == nil, "waits for the stopped tasks")
        // A second Ctrl-C kills what is still running.
        driver.apply(driver.machine.interrupt(2))
        #expect(driver.signals.filter { $0.1 == 9 }.count == running.count)
        for id in running { driver.exit(id, .signalled(15)) }
        #expect(driver.launches.count == launched, "nothing was launched after the interrupt")
        guard case .interrupted(let signal, let message) = driver.outcome else {
            Issue.record("expected an interrupt, got \(String(describing: driver.outcome))")
            return
        }
        #expect(signal == 2)
        #expect(message.contains("interrupted by SIGINT"))
        #expect(
            !driver.events.contains { if case .retrying = $0 { true } else { false } }, "stopped tasks are not retried")
    }

    @Test("an interrupt while a failure winds down wins: the run ends interrupted")
    func interruptDuringFailure() {
        var driver = Driver(slots: 2, retries: 0)
        driver.submit([TaskSpec(id: TaskID(.ingest, 0)), TaskSpec(id: TaskID(.ingest, 1))])
        driver.exit(TaskID(.ingest, 0), .exited(1))
        driver.apply(driver.machine.interrupt(15))
        driver.exit(TaskID(.ingest, 1), .signalled(15))
        guard case .interrupted(let signal, let message) = driver.outcome else {
            Issue.record("expected an interrupt")
            return
        }
        #expect(signal == 15)
        #expect(message.contains("SIGTERM"))
    }

    @Test("a need that is not in the plan is an internal error, not a hang")
    func unknownNeed() {
        var driver = Driver(slots: 1, expands: false)
        driver.submit([TaskSpec(id: .window, needs: [TaskID(.tokenize, 7)])])
        guard case .failed(let message) = driver.outcome else {
            Issue.record("expected a failure, got \(String(describing: driver.outcome))")
            return
        }
        #expect(message.contains("window needs tokenize/part-00007, which is not in the plan"))
    }

    @Test("an expansion that cannot be read fails the run naming the stage")
    func expansionFailure() {
        var driver = Driver(slots: 2)
        driver.submit(samplePlan(parts: 1))
        while driver.expansions.isEmpty, let next = driver.running.first { driver.exit(next) }
        driver.apply(driver.machine.expansionFailed(.materialize, "_work/window.json is unreadable"))
        guard case .failed(let message) = driver.outcome else {
            Issue.record("expected a failure")
            return
        }
        #expect(message.contains("cannot plan the materialize tasks: _work/window.json is unreadable"))
    }

    @Test("finished events carry the worker's report and usage; reused tasks say so")
    func outcomes() {
        var driver = Driver(slots: 1, expands: false)
        driver.submit([TaskSpec(id: TaskID(.ingest, 0))])
        driver.exit(TaskID(.ingest, 0), reused: true)
        #expect(driver.outcome == .completed)
        let outcome = driver.machine.outcomes[TaskID(.ingest, 0)]
        #expect(outcome?.report?.reused == true)
        #expect(outcome?.usage.peakRSSBytes == 1 << 20)
        #expect(outcome?.attempts == 1)
    }
}

/// A launcher that runs nothing: each attempt "exits" on the executor's queue with the status
/// the test chose for it, after a message or two.
final class FakeLauncher: TaskLauncher, @unchecked Sendable {
    // Invariant: touched only on the executor's queue.
    private var queue: DispatchQueue?
    private var deliver: (LauncherEvent) -> Void = { _ in }
    let fate: (TaskID, Int) -> TaskExit
    private(set) var launched: [(TaskID, Int)] = []
    private(set) var attachCount = 0
    private(set) var detachCount = 0

    init(fate: @escaping (TaskID, Int) -> TaskExit = { _, _ in .exited(0) }) { self.fate = fate }

    func attach(queue: DispatchQueue, deliver: @escaping (LauncherEvent) -> Void) {
        self.queue = queue
        self.deliver = deliver
        attachCount += 1
    }

    func launch(_ task: TaskSpec, attempt: Int) {
        launched.append((task.id, attempt))
        let exit = fate(task.id, attempt)
        queue?.async { [self] in
            deliver(.message(task.id, .progress(["bytes": 10])))
            if exit == .exited(0) { deliver(.message(task.id, .done(TaskReport("\(task.id)", reused: false)))) }
            deliver(.exited(task.id, exit, TaskUsage(cpuSeconds: 0.5, peakRSSBytes: 4096), lastWords: ""))
        }
    }

    func signal(_ task: TaskID, _ signal: Int32) {}
    func detach() { detachCount += 1 }
}

@Suite("executor shell over a fake launcher (no processes)")
struct ExecutorTests {
    @Test("runs a two-phase plan to the end: the expansion is asked for once, every task finishes once")
    func runsToCompletion() {
        let launcher = FakeLauncher()
        var expandedStages: [Stage] = []
        let executor = Executor(
            launcher: launcher, slots: 3, retries: 1, expansions: [.materialize: .window], handlesSignals: false,
            expand: { stage in
                expandedStages.append(stage)
                return shards(4)
            }, onEvent: { _ in })
        let (outcome, tasks) = executor.run(samplePlan(parts: 5))
        #expect(outcome == .completed)
        #expect(expandedStages == [.materialize])
        #expect(tasks.count == samplePlan(parts: 5).count + 4)
        #expect(Set(launcher.launched.map(\.0)).count == launcher.launched.count)
        #expect(launcher.attachCount == 1 && launcher.detachCount == 1)
        #expect(tasks.allSatisfy { $0.usage.cpuSeconds == 0.5 && $0.report != nil })
    }

    @Test("retries through the shell: a task that fails twice, then succeeds")
    func retriesThroughTheShell() {
        let launcher = FakeLauncher { id, attempt in
            id == TaskID(.tokenize, 2) && attempt < 3 ? .exited(WorkerExit.retryable) : .exited(0)
        }
        var retried: [Int] = []
        let executor = Executor(
            launcher: launcher, slots: 2, retries: 2, expansions: [.materialize: .window], handlesSignals: false,
            expand: { _ in shards(1) },
            onEvent: { event in
                if case .retrying(_, let attempt, _, _) = event { retried.append(attempt) }
            })
        let (outcome, tasks) = executor.run(samplePlan(parts: 3))
        #expect(outcome == .completed)
        #expect(retried == [1, 2])
        #expect(tasks.first { $0.id == TaskID(.tokenize, 2) }?.attempts == 3)
    }

    @Test("an expansion that throws ends the run with the error, not a hang")
    func expansionThrows() {
        struct Broken: Error, CustomStringConvertible { var description: String { "window record unreadable" } }
        let executor = Executor(
            launcher: FakeLauncher(), slots: 2, retries: 0, expansions: [.materialize: .window],
            handlesSignals: false, expand: { _ in throw Broken() }, onEvent: { _ in })
        let (outcome, _) = executor.run(samplePlan(parts: 2))
        #expect(outcome == .failed("cannot plan the materialize tasks: window record unreadable"))
    }

    @Test("submit ahead: every task is launched once what it needs is launched; finalize once every shard is")
    func submitAhead() {
        var driver = Driver(slots: 1 << 30, launchPolicy: .submitAhead)
        driver.submit(samplePlan(parts: 3))
        // Everything up to the window goes at once, needs before dependents; finalize waits for the shards.
        let first = driver.launches.map(\.0)
        #expect(Set(first) == Set(samplePlan(parts: 3).map(\.id).filter { $0 != .finalize }))
        for task in samplePlan(parts: 3) {
            guard let position = first.firstIndex(of: task.id) else { continue }
            for need in task.needs {
                #expect(first.firstIndex(of: need) ?? .max < position, "\(task.id) before \(need)")
            }
        }
        for id in first where id != .window { driver.exit(id) }
        #expect(driver.expansions.isEmpty)
        driver.exit(.window)
        #expect(driver.expansions == [.materialize])
        driver.submit(shards(2), closing: driver.expansions.removeLast())
        #expect(driver.launches.suffix(3).map(\.0) == [TaskID(.materialize, 0), TaskID(.materialize, 1), .finalize])
        driver.runToEnd()
        #expect(driver.outcome == .completed)
        #expect(driver.launches.count == samplePlan(parts: 3).count + 2)
    }

    @Test("submit ahead: a retry is a new launch, dependents stay launched; a failure withdraws what has not started")
    func submitAheadRetryAndFailure() {
        var driver = Driver(slots: 1 << 30, retries: 1, launchPolicy: .submitAhead)
        driver.submit(samplePlan(parts: 2))
        let launched = driver.launches.count
        driver.exit(TaskID(.ingest, 1), .signalled(9))
        #expect(driver.launches.count == launched + 1)
        #expect(driver.launches.last.map { $0.0 == TaskID(.ingest, 1) && $0.1 == 2 } == true)
        #expect(driver.running.contains(TaskID(.tokenize, 1)), "its dependent is not launched again by the policy")
        #expect(driver.withdrawals == 0)
        driver.exit(TaskID(.ingest, 1), .ended("TIMEOUT"))
        #expect(driver.withdrawals == 1, "the run fails: jobs still waiting are withdrawn")
        #expect(driver.outcome == nil, "it ends once every launched task has reported")
        let message = driver.failureAfterStopping()
        #expect(message.contains("ingest/part-00001") && message.contains("TIMEOUT"), "\(message)")
    }

    @Test("a task cancelled outside the run stops it, without a retry")
    func cancelledIsNotRetried() {
        var driver = Driver(slots: 1 << 30, retries: 3, launchPolicy: .submitAhead)
        driver.submit(samplePlan(parts: 1))
        let launched = driver.launches.count
        driver.exit(.tokenizer, .cancelled("job 12_0 was cancelled outside this run (scancel)"))
        #expect(driver.launches.count == launched)
        let message = driver.failureAfterStopping()
        #expect(message.contains("task tokenizer") && message.contains("cancelled outside this run"), "\(message)")
    }
}

@Suite("Slurm dependency clauses")
struct SlurmDependencyTests {
    func refs(_ job: Int, _ indices: [Int]) -> Set<SlurmJobRef> {
        Set(indices.map { SlurmJobRef(job: job, index: $0) })
    }
    /// Ingest parts 0–2 in job 7, the tokenizer in job 8, tokenize parts 0–2 in job 9.
    let arraySizes = [7: 3, 8: 1, 9: 3]

    @Test("element i after element i: aftercorr; a whole array: afterok:JOB")
    func correspondingAndWhole() {
        let needs = (0..<3).map { refs(7, [$0]).union(refs(8, [0])) }
        #expect(SlurmLauncher.dependencyClause(needs, arraySizes: arraySizes, replaced: []) == "aftercorr:7,afterok:8")
        #expect(
            SlurmLauncher.dependencyClause([refs(9, [0, 1, 2])], arraySizes: arraySizes, replaced: []) == "afterok:9")
        #expect(SlurmLauncher.dependencyClause([[], []], arraySizes: arraySizes, replaced: []) == "")
    }

    @Test("a replaced element: the rest of its array by name, the new job beside it")
    func replacedElement() {
        let needs = [refs(9, [0, 2]).union(refs(11, [0]))]
        #expect(
            SlurmLauncher.dependencyClause(needs, arraySizes: arraySizes, replaced: refs(9, [1]))
                == "afterok:9_0:9_2,afterok:11_0")
        // A whole array whose element was replaced never satisfies afterok:JOB.
        #expect(
            SlurmLauncher.dependencyClause([refs(9, [0, 1, 2])], arraySizes: arraySizes, replaced: refs(9, [1]))
                == "afterok:9_0:9_1:9_2")
    }

    @Test("tasks needing different things cannot share an array")
    func noSharedClause() {
        #expect(
            SlurmLauncher.dependencyClause([refs(7, [0]), refs(7, [0, 1])], arraySizes: arraySizes, replaced: []) == nil
        )
        #expect(
            SlurmLauncher.dependencyClause([refs(7, [1]), refs(7, [0])], arraySizes: arraySizes, replaced: []) == nil)
    }
}
