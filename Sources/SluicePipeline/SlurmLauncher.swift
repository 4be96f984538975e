import Dispatch
import Foundation
import SluiceConfig
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// Launches each attempt as an element of a Slurm job array (docs/SLURM.md). Driven by a
/// `SchedulerStateMachine` with `LaunchPolicy.submitAhead`: a task is launched as soon as what it
/// needs has been launched, and Slurm holds it until those jobs have succeeded.
///
/// - Launches that arrive together (one batch of the state machine's actions) become one job
///   array per stage, split at the cluster's `MaxArraySize`. Each array depends on exactly the
///   jobs its tasks need: `afterok:JOB` for a whole upstream array, `aftercorr:JOB` where task
///   *i* needs element *i* of an upstream array (tokenize part *i* after ingest part *i*), and
///   explicit `afterok:JOB_i:JOB_j` lists otherwise; `--kill-on-invalid-dep=yes` removes a job
///   whose dependency failed.
/// - A retried task is a new job. Slurm never revives a dependency on the failed one (and counts
///   a dependency on a job it has forgotten as satisfied), so every waiting job that depended on
///   it — transitively — is cancelled and submitted again, re-pointed at the new job, without
///   counting as an attempt. Reports about replaced jobs are ignored.
/// - `squeue` is polled (no accounting database needed); each job's worker writes its typed
///   messages to `_work/logs/<task>.events`, which the poll reads on, and its stderr to
///   `_work/logs/<task>.log`, the failure message's last words.
public final class SlurmLauncher: TaskLauncher, @unchecked Sendable {
    // Invariant: every `var` is touched only on `queue`, which `attach` sets before any use.
    private let settings: ExecutorSettings.Slurm
    private let layout: OutputLayout
    private let executable: String
    private let environment: [String: String]
    private let client: SlurmClient
    private let maxArraySize: Int
    private let log: @Sendable (String) -> Void
    private var queue = DispatchQueue(label: "unused")
    private var deliver: (LauncherEvent) -> Void = { _ in }
    private var timer: (any DispatchSourceTimer)?

    private struct Attempt {
        var task: TaskSpec
        /// nil while waiting to be (re)submitted.
        var ref: SlurmJobRef?
        /// The job array elements it waits for.
        var dependencies: Set<SlurmJobRef> = []
        var started = false
        var cancelledByUs = false
        var eventsOffset = 0
        var logOffset = 0
        var reader = WorkerMessageReader()
        /// Its worker sent its final report (what decides if the job's record is lost).
        var reportedDone = false
        var submittedAt = DispatchTime.now()
    }

    /// The attempt of each task that has not been reported as exited.
    private var live: [TaskID: Attempt] = [:]
    /// The latest job of each task ever submitted in this run (finished ones included).
    private var latest: [TaskID: SlurmJobRef] = [:]
    /// Tasks that succeeded in this run: nothing need wait for them any more.
    private var succeeded: Set<TaskID> = []
    /// Every array's size, and the elements that were replaced (so `afterok:JOB` would never hold).
    private var arraySizes: [Int: Int] = [:]
    private var replaced: Set<SlurmJobRef> = []
    /// Waiting for the end of the current batch of actions.
    private var toSubmit: [TaskID] = []
    private var toCancel: [SlurmJobRef] = []
    /// A second interrupt's: killed outright, and reported ended without waiting for squeue.
    private var toKill: [SlurmJobRef] = []
    private var flushScheduled = false
    private var submissions: [SlurmJobsRecord.Submission] = []
    private var queueErrors = 0
    private var arrayCounter = 0

    /// - Parameters:
    ///   - maxArraySize: most elements per array (the cluster's `MaxArraySize`, or the config's).
    ///   - log: the coordinator's own messages (a lost controller, a failed `scancel`).
    public init(
        settings: ExecutorSettings.Slurm, layout: OutputLayout, executable: String, environment: [String: String],
        maxArraySize: Int, client: SlurmClient = SlurmClient(), log: @escaping @Sendable (String) -> Void
    ) {
        self.settings = settings
        self.layout = layout
        self.executable = executable
        self.environment = environment
        self.maxArraySize = max(1, maxArraySize)
        self.client = client
        self.log = log
    }

    public func attach(queue: DispatchQueue, deliver: @escaping (LauncherEvent) -> Void) {
        self.queue = queue
        self.deliver = deliver
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let interval = DispatchTimeInterval.milliseconds(settings.pollMilliseconds)
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [self] in poll() }
        timer.resume()
        self.timer = timer
    }

    public func detach() {
        timer?.cancel()
        timer = nil
        deliver = { _ in }
    }

    public func launch(_ task: TaskSpec, attempt: Int) {
        if let previous = latest[task.id], live[task.id] == nil {
            // A retry: whatever waits on the failed job waits in vain — submit it again after this one.
            repoint(from: [previous])
        }
        live[task.id] = Attempt(task: task)
        toSubmit.append(task.id)
        scheduleFlush()
    }

    public func signal(_ task: TaskID, _ signal: Int32) {
        guard var attempt = live[task] else { return }
        guard let ref = attempt.ref else {
            // Not submitted yet: it never will be.
            toSubmit.removeAll { $0 == task }
            live[task] = nil
            queue.async { [self] in deliver(.exited(task, .signalled(signal), TaskUsage(), lastWords: "")) }
            return
        }
        attempt.cancelledByUs = true
        live[task] = attempt
        if signal == SIGKILL {
            // A second interrupt: do not wait for the cluster to confirm.
            toKill.append(ref)
            live[task] = nil
            queue.async { [self] in deliver(.exited(task, .signalled(signal), TaskUsage(), lastWords: "")) }
        } else {
            toCancel.append(ref)
        }
        scheduleFlush()
    }

    public func withdrawUnstarted() {
        for (id, attempt) in live.sorted(by: { $0.key < $1.key }) where !attempt.started {
            signal(id, SIGTERM)
        }
    }

    // MARK: - Submitting

    /// Cancels the waiting jobs that depend on `refs`, transitively, and queues their tasks for
    /// submission again.
    private func repoint(from refs: Set<SlurmJobRef>) {
        var gone = refs
        replaced.formUnion(refs)
        var changed = true
        while changed {
            changed = false
            for (id, attempt) in live.sorted(by: { $0.key < $1.key }) {
                guard let ref = attempt.ref, !attempt.dependencies.isDisjoint(with: gone) else { continue }
                gone.insert(ref)
                replaced.insert(ref)
                toCancel.append(ref)
                live[id]?.ref = nil
                live[id]?.dependencies = []
                toSubmit.append(id)
                changed = true
            }
        }
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        // After the state machine's current batch of actions: launches that come together are
        // submitted together.
        queue.async { [self] in flush() }
    }

    private func flush() {
        flushScheduled = false
        do {
            if !toKill.isEmpty { try client.cancel(toKill, signal: "KILL") }
            try client.cancel(toKill + toCancel)
        } catch {
            log("slurm: \(error)")
        }
        (toKill, toCancel) = ([], [])
        let ids = Set(toSubmit).sorted()
        toSubmit = []
        guard !ids.isEmpty else { return }
        do {
            try prepareFiles()
        } catch {
            for id in ids { failSubmission(id, "cannot write the job script under \(layout.slurmDirectory): \(error)") }
            return
        }
        // Stage by stage, so every dependency has its job id before its dependents are submitted.
        for (_, group) in Dictionary(grouping: ids.filter { live[$0] != nil && live[$0]?.ref == nil }, by: \.stage)
            .sorted(by: {
                $0.key < $1.key
            })
        {
            for start in stride(from: 0, to: group.count, by: maxArraySize) {
                submit(Array(group[start..<min(group.count, start + maxArraySize)]))
            }
        }
        writeRecord()
    }

    /// The job array elements `task` must wait for: the current jobs of what it needs that have
    /// not succeeded yet.
    private func dependencies(of task: TaskSpec) -> Set<SlurmJobRef> {
        var refs: Set<SlurmJobRef> = []
        var needs = task.needs
        for stage in task.needsEvery { needs += latest.keys.filter { $0.stage == stage } }
        // Earlier stages are submitted first in a flush, so `latest` is each need's current job.
        for need in needs where !succeeded.contains(need) {
            if let ref = latest[need] { refs.insert(ref) }
        }
        return refs
    }

    /// Submits `ids` (one stage) as one array if one dependency clause fits them all, else one
    /// job each.
    private func submit(_ ids: [TaskID]) {
        let needs = ids.map { id in live[id].map { dependencies(of: $0.task) } ?? [] }
        if ids.count > 1, let clause = Self.dependencyClause(needs, arraySizes: arraySizes, replaced: replaced) {
            submitArray(ids, needs: needs, clause: clause)
        } else {
            for (id, refs) in zip(ids, needs) {
                submitArray(
                    [id], needs: [refs],
                    clause: Self.dependencyClause([refs], arraySizes: arraySizes, replaced: replaced))
            }
        }
    }

    /// One `--dependency` value for an array whose element *i* waits for `needs[i]`, or nil
    /// when no single clause says it. A single task always gets one (an explicit list).
    public static func dependencyClause(
        _ needs: [Set<SlurmJobRef>], arraySizes: [Int: Int], replaced: Set<SlurmJobRef>
    ) -> String? {
        let jobs = Set(needs.flatMap { $0.map(\.job) }).sorted()
        var clauses: [String] = []
        for job in jobs {
            let perTask = needs.map { $0.filter { $0.job == job } }
            let elements = Set((0..<(arraySizes[job] ?? 0)).map { SlurmJobRef(job: job, index: $0) })
            if elements.isDisjoint(with: replaced), perTask.allSatisfy({ $0 == elements }) {
                clauses.append("afterok:\(job)")
            } else if needs.count > 1,
                perTask.enumerated().allSatisfy({ $0.element == [SlurmJobRef(job: job, index: $0.offset)] })
            {
                clauses.append("aftercorr:\(job)")
            } else if perTask.allSatisfy({ $0 == perTask[0] }) {
                clauses.append("afterok:" + perTask[0].sorted().map(\.description).joined(separator: ":"))
            } else {
                return nil
            }
        }
        return clauses.joined(separator: ",")
    }

    private func submitArray(_ ids: [TaskID], needs: [Set<SlurmJobRef>], clause: String?) {
        arrayCounter += 1
        let stage = ids[0].stage
        let list = layout.path("_work/slurm/\(stage.rawValue)-\(TaskID.fiveDigits(arrayCounter)).tasks")
        do {
            try AtomicFileWriter.write(Array(ids.map { $0.description + "\n" }.joined().utf8), to: list)
        } catch {
            for id in ids { failSubmission(id, "cannot write \(list): \(error)") }
            return
        }
        // Offsets first: the job may start before sbatch returns.
        for id in ids {
            let name = Self.logName(id)
            live[id]?.eventsOffset = Self.size(layout.path("_work/logs/\(name).events"))
            live[id]?.logOffset = Self.size(layout.path("_work/logs/\(name).log"))
        }
        var arguments = [
            "--array=0-\(ids.count - 1)", "--job-name=\(settings.jobName)-\(stage.rawValue)",
            "--output=\(layout.path("_work/logs"))/slurm-%A_%a.out", "--open-mode=append",
            "--kill-on-invalid-dep=yes", "--cpus-per-task=\(settings.cpusPerTask)",
        ]
        if let clause, !clause.isEmpty { arguments.append("--dependency=\(clause)") }
        arguments += Self.resourceArguments(settings, timeLimit: true)
        arguments += [layout.path("_work/slurm/job.sh"), list]
        let job: Int
        do {
            job = try client.submit(arguments)
        } catch {
            for id in ids { failSubmission(id, "\(error)") }
            return
        }
        arraySizes[job] = ids.count
        for (index, id) in ids.enumerated() {
            let ref = SlurmJobRef(job: job, index: index)
            live[id]?.ref = ref
            live[id]?.dependencies = needs[index]
            live[id]?.submittedAt = DispatchTime.now()
            latest[id] = ref
        }
        submissions.append(SlurmJobsRecord.Submission(job: job, stage: stage, tasks: ids, dependency: clause ?? ""))
    }

    /// The partition, account, QOS, memory, time limit and extra arguments of every job.
    public static func resourceArguments(_ settings: ExecutorSettings.Slurm, timeLimit: Bool) -> [String] {
        var arguments: [String] = []
        if let partition = settings.partition { arguments.append("--partition=\(partition)") }
        if let account = settings.account { arguments.append("--account=\(account)") }
        if let qos = settings.qos { arguments.append("--qos=\(qos)") }
        if timeLimit, let time = settings.timeLimit { arguments.append("--time=\(time)") }
        if let memory = settings.memoryPerTask { arguments.append("--mem=\(memory)") }
        return arguments + settings.sbatchArguments
    }

    private func failSubmission(_ id: TaskID, _ message: String) {
        live[id] = nil
        queue.async { [self] in deliver(.exited(id, .launchFailed(message), TaskUsage(), lastWords: "")) }
    }

    private var filesReady = false

    /// The job script every array runs, and the log folder.
    private func prepareFiles() throws {
        guard !filesReady else { return }
        try FileManager.default.createDirectory(atPath: layout.path("_work/logs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: layout.slurmDirectory, withIntermediateDirectories: true)
        let exports = environment.sorted { $0.key < $1.key }.map { "export \($0.key)=\(Self.quoted($0.value))\n" }
            .joined()
        let script = """
            #!/bin/sh
            # Written by sluice for \(layout.root): element N of an array runs line N+1 of the task
            # list given as $1, as `sluice worker --task`. Its messages go to _work/logs/<task>.events,
            # its errors to _work/logs/<task>.log.
            \(exports)task=$(sed -n "$((${SLURM_ARRAY_TASK_ID:-0} + 1))p" "$1")
            if [ -z "$task" ]; then
                echo "sluice job: no line $((${SLURM_ARRAY_TASK_ID:-0} + 1)) in $1" >&2
                exit 65
            fi
            name=$(printf '%s' "$task" | tr / -)
            logs=\(Self.quoted(layout.path("_work/logs")))
            exec \(Self.quoted(executable)) worker --task "$task" \(Self.quoted(layout.root)) --events \
            >>"$logs/$name.events" 2>>"$logs/$name.log"

            """
        try AtomicFileWriter.write(Array(script.utf8), to: layout.path("_work/slurm/job.sh"))
        chmod(layout.path("_work/slurm/job.sh"), 0o755)
        filesReady = true
    }

    private func writeRecord() {
        let record = SlurmJobsRecord(
            coordinator: ProcessInfo.processInfo.environment["SLURM_JOB_ID"].flatMap { Int($0) },
            submissions: submissions)
        try? AtomicFileWriter.write(try StableJSON.encode(record), to: layout.slurmJobsRecord)
    }

    // MARK: - Watching

    private func poll() {
        guard live.values.contains(where: { $0.ref != nil }) else { return }
        let statuses: SlurmQueue
        do {
            statuses = try client.queue()
            queueErrors = 0
        } catch {
            queueErrors += 1
            if queueErrors == 1 || queueErrors % 60 == 0 {
                log("slurm: cannot ask the controller (\(error)); retrying")
            }
            return
        }
        // In stage order: a failed upstream task is handled — its dependents re-pointed — before
        // the cancellation of those dependents is looked at.
        for id in live.keys.sorted() {
            guard let attempt = live[id], let ref = attempt.ref else { continue }
            guard let status = statuses[ref] else {
                // Not in squeue: just submitted (not visible yet), or forgotten by the controller.
                if DispatchTime.now().uptimeNanoseconds - attempt.submittedAt.uptimeNanoseconds > 30_000_000_000 {
                    readEvents(id)
                    finish(id)
                }
                continue
            }
            if status.hasStarted {
                live[id]?.started = true
                readEvents(id)
            }
            if status.isFinal { finish(id, status: status) }
        }
    }

    /// Delivers the messages the task's worker has written since the last look.
    private func readEvents(_ id: TaskID) {
        guard var attempt = live[id] else { return }
        let (bytes, end) = Self.read(layout.path("_work/logs/\(Self.logName(id)).events"), from: attempt.eventsOffset)
        guard !bytes.isEmpty else { return }
        let messages = attempt.reader.messages(after: bytes)
        attempt.eventsOffset = end
        if messages.contains(where: { if case .done = $0 { true } else { false } }) { attempt.reportedDone = true }
        live[id] = attempt
        for message in messages { deliver(.message(id, message)) }
    }

    private func finish(_ id: TaskID, status: SlurmJobStatus? = nil) {
        guard let attempt = live[id], let ref = attempt.ref else { return }
        let exit: TaskExit
        switch status?.state {
        case "COMPLETED"?:
            exit = .exited(WorkerExit.done)
        case "FAILED"?:
            let code = client.exitCode(ref)
            if let code, code.signal != 0 {
                exit = .signalled(code.signal)
            } else {
                exit = .exited(code?.status ?? WorkerExit.retryable)
            }
        case "CANCELLED"?:
            if attempt.cancelledByUs {
                exit = .signalled(SIGTERM)
            } else if status?.reason == "DependencyNeverSatisfied" {
                exit = .cancelled("job \(ref): a job it depends on failed")
            } else {
                exit = .cancelled(
                    "job \(ref) was cancelled outside this run (scancel); run the same command again to resume")
            }
        case "TIMEOUT"?:
            exit = .ended("job \(ref) reached its time limit (executor.slurm.time_limit)")
        case "OUT_OF_MEMORY"?:
            exit = .ended("job \(ref) ran out of memory (executor.slurm.mem_per_task)")
        case "NODE_FAIL"?, "BOOT_FAIL"?:
            exit = .ended("job \(ref): its node failed (\(status?.state ?? ""))")
        case let state?:
            exit = .ended("job \(ref) ended as \(state)")
        case nil:
            // The controller forgot it before a poll saw it end: its worker's final report decides.
            if attempt.reportedDone {
                exit = .exited(WorkerExit.done)
            } else if attempt.cancelledByUs {
                exit = .signalled(SIGTERM)
            } else {
                exit = .ended("job \(ref) vanished from squeue without a final state")
            }
        }
        live[id] = nil
        if exit == .exited(WorkerExit.done) { succeeded.insert(id) }
        deliver(.exited(id, exit, TaskUsage(), lastWords: lastWords(id, from: attempt.logOffset)))
    }

    private func lastWords(_ id: TaskID, from offset: Int) -> String {
        let path = layout.path("_work/logs/\(Self.logName(id)).log")
        let size = Self.size(path)
        let (bytes, _) = Self.read(path, from: max(offset, size - 4096))
        return ProcessLauncher.tail(bytes)
    }

    // MARK: - Files

    /// `ingest/part-00003` → `ingest-part-00003`.
    public static func logName(_ id: TaskID) -> String { id.description.replacingOccurrences(of: "/", with: "-") }

    static func size(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// The bytes of `path` from `offset` to its end, and where that end is.
    static func read(_ path: String, from offset: Int) -> ([UInt8], Int) {
        // A log not written yet, or gone, has no new bytes.
        let bytes = (try? FileBytes.read(path, from: offset)) ?? []
        return (bytes, offset + bytes.count)
    }

    /// A single-quoted shell word.
    public static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// `_work/slurm/jobs.json`: every job array a Slurm run submitted and the tasks of its
/// elements (element *i* runs `tasks[i]`), for `sluice status` and for people reading `squeue`.
public struct SlurmJobsRecord: Codable, Sendable {
    public static let formatName = "sluice.slurm-jobs.v1"
    public var format = SlurmJobsRecord.formatName
    public var coordinator: Int?
    public var submissions: [Submission]

    public struct Submission: Codable, Sendable {
        public var job: Int
        public var stage: Stage
        public var tasks: [TaskID]
        public var dependency: String
    }

    public init(coordinator: Int? = nil, submissions: [Submission]) {
        self.coordinator = coordinator
        self.submissions = submissions
    }

    /// Each task's latest job array element.
    public var latest: [TaskID: SlurmJobRef] {
        var refs: [TaskID: SlurmJobRef] = [:]
        for submission in submissions {
            for (index, task) in submission.tasks.enumerated() {
                refs[task] = SlurmJobRef(job: submission.job, index: index)
            }
        }
        return refs
    }
}
