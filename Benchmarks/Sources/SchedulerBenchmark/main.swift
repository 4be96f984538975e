// The coordinator's cost per task: the scheduling policy alone (SchedulerStateMachine driven
// in-process, no I/O), and the local executor end to end — the real Executor and ProcessLauncher
// starting a tiny process per task (`/bin/true`), so what is measured is Sluice's overhead, not
// the tasks'. Run: SchedulerBenchmark [TASKS] [PROCESS_TASKS] (release build).
import Dispatch
import Foundation
import SluicePipeline

#if canImport(Glibc)
    import Glibc
#endif

let taskCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100_000 : 100_000
let processTasks = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 2_000 : 2_000

/// A plan of `parts` ingest → tokenize pairs, the tokenizer, the window, then finalize.
func plan(parts: Int) -> [TaskSpec] {
    var tasks = (0..<parts).map { TaskSpec(id: TaskID(.ingest, $0)) }
    tasks.append(TaskSpec(id: .tokenizer))
    tasks += (0..<parts).map { TaskSpec(id: TaskID(.tokenize, $0), needs: [TaskID(.ingest, $0), .tokenizer]) }
    tasks.append(TaskSpec(id: .window, needs: (0..<parts).map { TaskID(.tokenize, $0) }))
    tasks.append(TaskSpec(id: .finalize, needs: [.window]))
    return tasks
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

// MARK: The policy alone

let tasks = plan(parts: (taskCount - 3) / 2)
var machine = SchedulerStateMachine(slots: 8, retries: 2)
var running: [TaskID] = []
var finished = 0
let start = DispatchTime.now().uptimeNanoseconds
func launched(_ actions: [SchedulerStateMachine.Action]) -> [TaskID] {
    actions.compactMap { if case .launch(let task, _) = $0 { task.id } else { nil } }
}
running += launched(machine.submit(tasks, now: 0))
var next = 0
while next < running.count {
    let id = running[next]
    next += 1
    running += launched(machine.message(id, .done(TaskReport("", reused: false))))
    running += launched(machine.exited(id, .exited(0), now: 0))
    finished += 1
}
let policySeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
guard machine.isFinished, finished == tasks.count else { fatalError("the plan did not finish: \(finished)") }
print(
    String(
        format: "state machine: %d tasks in %.3f s — %.2f µs per task (submit, launch, done message, exit)",
        tasks.count, policySeconds, policySeconds / Double(tasks.count) * 1e6))

// MARK: The local executor with real processes

let launcher = ProcessLauncher(executable: "/bin/true") { _ in [] }
let small = plan(parts: (processTasks - 3) / 2)
let executor = Executor(
    launcher: launcher, slots: 2, retries: 0, handlesSignals: false, expand: { _ in [] }, onEvent: { _ in })
let cpuBefore = cpuSeconds()
let wallStart = DispatchTime.now().uptimeNanoseconds
let (outcome, outcomes) = executor.run(small)
let wall = Double(DispatchTime.now().uptimeNanoseconds - wallStart) / 1e9
let cpu = cpuSeconds() - cpuBefore
guard outcome == .completed, outcomes.count == small.count else { fatalError("executor: \(outcome)") }
print(
    String(
        format:
            "local executor, 2 slots: %d tasks of /bin/true in %.2f s — %.0f tasks/s; coordinator CPU %.3f s, %.0f µs per task",
        small.count, wall, Double(small.count) / wall, cpu, cpu / Double(small.count) * 1e6))
