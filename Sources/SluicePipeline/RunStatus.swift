import Foundation
import SluiceConfig
import SluiceIO

/// Where a run stands, read from its output directory — the plan, each task's files, and for a
/// Slurm run the jobs it submitted as `squeue` sees them (`sluice status OUT`). Works while the
/// run goes on, after it ended and for a detached run whose coordinator is itself a job.
public struct RunStatus: Sendable {
    public struct StageStatus: Sendable, Equatable {
        public var stage: Stage
        public var tasks = 0
        /// Every file the task writes is there.
        public var done = 0
        /// Slurm states of the unfinished tasks' latest jobs: `RUNNING` → 2.
        public var jobStates: [String: Int] = [:]
        /// Up to a few unfinished tasks whose job failed or was cancelled: `tokenize/part-00002 (job 12_2 FAILED)`.
        public var problems: [String] = []
    }

    public var root: String
    public var stages: [StageStatus]
    /// Whether the materialize tasks are known yet (the window task has run).
    public var expanded: Bool
    /// `report.json` and `manifest.json` (or the report alone, for runs without windows) exist.
    public var complete: Bool
    /// A detached run's coordinator job and its state.
    public var coordinator: (job: Int, state: String)?
    /// Why `squeue` could not be asked, when it could not.
    public var queueError: String?

    public static func read(_ layout: OutputLayout) throws -> RunStatus {
        guard FileManager.default.fileExists(atPath: layout.runRecord) else {
            throw PipelineError(
                .missingInput, "\(layout.root) is not the output directory of a sluice run (no _work/run.json)",
                path: layout.runRecord)
        }
        _ = try RunRecord.load(layout)
        var plan = try Plan.load(from: layout)
        var expanded = plan.expansion == nil
        if let expansion = plan.expansion {
            if plan.tasks.contains(where: { $0.id.stage == expansion.stage }) {
                expanded = true
            } else if let tasks = try? expansion.tasks(layout: layout) {
                plan = plan.including(tasks)
                expanded = true
            }
        }
        let fileManager = FileManager.default
        let jobs = try? StableJSON.decode(SlurmJobsRecord.self, from: layout.slurmJobsRecord)
        var statuses = SlurmQueue()
        var queueError: String?
        // The coordinator adds the timing last: until then the run is still ending.
        let reportDone = (try? StableJSON.decode(RunReport.self, from: layout.report))?.timing != nil
        if let jobs, !reportDone, !jobs.submissions.isEmpty || jobs.coordinator != nil, SlurmClient.sbatchPath() != nil
        {
            do {
                statuses = try SlurmClient().queue()
            } catch {
                queueError = "\(error)"
            }
        }
        let latest = jobs?.latest ?? [:]
        var byStage: [Stage: StageStatus] = [:]
        for task in plan.tasks {
            var status = byStage[task.id.stage] ?? StageStatus(stage: task.id.stage)
            status.tasks += 1
            if !task.writes.isEmpty && task.writes.allSatisfy({ fileManager.fileExists(atPath: layout.path($0)) }) {
                status.done += 1
            } else if let ref = latest[task.id] {
                let job = statuses[ref]
                let state = job?.state ?? "UNKNOWN"
                status.jobStates[state, default: 0] += 1
                if let job, job.isFinal, job.state != "COMPLETED", status.problems.count < 3 {
                    status.problems.append("\(task.id) (job \(ref) \(state))")
                }
            }
            byStage[task.id.stage] = status
        }
        var coordinator: (Int, String)?
        if let job = jobs?.coordinator {
            // Not an array: squeue lists it with no element index.
            let state = statuses.arrays[job]?.state
            coordinator = (job, reportDone ? "done" : state ?? (queueError == nil ? "gone from squeue" : "UNKNOWN"))
        }
        return RunStatus(
            root: layout.root, stages: byStage.values.sorted { $0.stage < $1.stage }, expanded: expanded,
            complete: reportDone, coordinator: coordinator, queueError: queueError)
    }

    /// A few lines for a terminal.
    public var text: String {
        var lines = ["\(root): " + (complete ? "complete" : "not finished")]
        if let coordinator { lines.append("  coordinator job \(coordinator.job): \(coordinator.state)") }
        for stage in stages {
            var line =
                "  " + stage.stage.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                + "\(stage.done)/\(stage.tasks) done"
            let states = stage.jobStates.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.lowercased())" }
            if !states.isEmpty { line += ", " + states.joined(separator: ", ") }
            if !stage.problems.isEmpty { line += "; " + stage.problems.joined(separator: ", ") }
            lines.append(line)
        }
        if !expanded { lines.append("  materialize  not planned yet (the window task has not run)") }
        if let queueError { lines.append("  squeue: \(queueError)") }
        return lines.joined(separator: "\n")
    }
}

extension PipelineRunner {
    /// `sluice run --executor slurm --detach`: checks the config and the cluster, prepares the
    /// output directory, and submits the coordinator itself as a small job that runs
    /// `sluice run … --executor slurm` — so the run keeps its retries and its second phase
    /// with nobody logged in. Returns the coordinator's job id.
    /// - Parameter arguments: the `sluice run` arguments the job passes on (`--retries N`, …).
    public func submitDetached(configFile: String, arguments: [String]) throws -> Int {
        let executable = options.workerExecutable ?? Self.currentExecutable()
        let settings = configuration.executor.slurm
        _ = try SlurmCluster.check(settings: settings, output: layout.root, executable: executable)
        _ = try prepare()
        try FileManager.default.createDirectory(atPath: layout.logsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: layout.slurmDirectory, withIntermediateDirectories: true)
        let command =
            ([
                "exec", executable, "run", URL(fileURLWithPath: configFile).standardized.path, "--executor", "slurm",
                "--out", layout.root, "--log", "text",
            ] + arguments)
            .enumerated().map { $0.offset == 0 ? $0.element : SlurmLauncher.quoted($0.element) }.joined(separator: " ")
        var sbatch = [
            "--job-name=\(settings.jobName)-coordinator", "--output=\(layout.logsDirectory)/coordinator.log",
            "--open-mode=append", "--cpus-per-task=1",
        ]
        sbatch += SlurmLauncher.resourceArguments(settings, timeLimit: false)
        sbatch += ["--wrap", command]
        let job: Int
        do {
            job = try SlurmClient().submit(sbatch)
        } catch {
            throw PipelineError(.config, "--detach: cannot submit the coordinator job: \(error)")
        }
        try AtomicFileWriter.write(
            try StableJSON.encode(SlurmJobsRecord(coordinator: job, submissions: [])), to: layout.slurmJobsRecord)
        return job
    }
}
