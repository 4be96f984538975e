import Dispatch
import Foundation
import SluiceConfig
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// Wall and CPU time of one stage's tasks in one invocation, and their largest peak RSS.
public struct StageTiming: Codable, Sendable {
    /// Tasks that did their work in this invocation.
    public var tasks: Int
    /// Tasks that found their completion record intact and their identity unchanged.
    public var reused: Int
    public var wallSeconds: Double
    public var cpuSeconds: Double
    public var peakRSSBytes: Int
    public var retries: Int
    enum CodingKeys: String, CodingKey {
        case tasks, reused
        case wallSeconds = "wall_seconds"
        case cpuSeconds = "cpu_seconds"
        case peakRSSBytes = "peak_rss_bytes"
        case retries
    }
}

/// Time and memory of a run: the only part of `report.json` that differs between runs.
public struct RunTiming: Codable, Sendable {
    /// `local` or `slurm`.
    public var executor: String
    /// Worker processes at once (0 on Slurm, where the cluster decides).
    public var workers: Int
    public var wallSeconds: Double
    /// CPU time of the coordinator itself (planning, scheduling, progress).
    public var coordinatorCPUSeconds: Double
    public var peakWorkerRSSBytes: Int
    public var stages: [String: StageTiming]
    enum CodingKeys: String, CodingKey {
        case executor, workers
        case wallSeconds = "wall_seconds"
        case coordinatorCPUSeconds = "coordinator_cpu_seconds"
        case peakWorkerRSSBytes = "peak_worker_rss_bytes"
        case stages
    }
}

/// SIGINT or SIGTERM stopped the run; the output is resumable.
public struct RunInterrupted: Error, CustomStringConvertible {
    public var message: String
    public var signal: Int32
    public var description: String { message }
}

/// A task failed for good; the message names it, what it reads and its last words.
public struct RunFailed: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// `sluice run`: plans a config's tasks, prepares the output directory and runs the plan with
/// the local executor (a worker process per task), resuming finished tasks.
///
/// Every task writes only its own files, named after its unit of work, and skips itself when
/// its completion record holds the same identity — so the output depends neither on the worker
/// count, on timing or on interruptions, nor on which earlier run left which files.
public struct PipelineRunner {
    public struct Options: Sendable {
        public var outputOverride: String?
        public var workersOverride: Int?
        public var retriesOverride: Int?
        /// Start over in the output directory (and make outputs that look too big for the disk).
        public var force = false
        /// Write outputs that look too big (embeddings far larger than the text, or than the free
        /// disk); `force` implies it.
        public var allowLargeOutput = false
        /// The `sluice` binary the workers run (default: this process's executable).
        public var workerExecutable: String?
        /// Extra environment for the workers.
        public var workerEnvironment: [String: String] = [:]
        /// Where tasks run (overrides the config's `executor.kind`).
        public var executorOverride: ExecutorSettings.Kind?
        public init() {}
    }

    public let configuration: Configuration
    public let options: Options
    public let layout: OutputLayout
    /// Receives what the executor reports, on its queue.
    public var onEvent: @Sendable (ExecutorEvent) -> Void = { _ in }
    /// Receives the coordinator's own messages.
    public var log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(configuration: Configuration, options: Options) {
        self.configuration = configuration
        self.options = options
        layout = OutputLayout(root: options.outputOverride ?? configuration.resolvePath(configuration.output))
    }

    public var executorKind: ExecutorSettings.Kind { options.executorOverride ?? configuration.executor.kind }

    public var workerCount: Int {
        max(1, options.workersOverride ?? configuration.workers ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Plans and prepares `layout.root` for workers without running anything (`sluice plan --write`).
    public func prepare(encoder: PlanFileEncoder = PlanFileEncoder()) throws -> Plan {
        try ReferencedFiles.check(configuration)
        let plan = try Plan(configuration: configuration)
        try OutputDirectory(layout: layout).prepare(
            configuration: configuration, configText: configuration.text, plan: plan, startOver: options.force,
            allowLargeOutput: options.force || options.allowLargeOutput, encoder: encoder)
        return plan
    }

    public func run() throws -> RunReport {
        let clock = DispatchTime.now().uptimeNanoseconds
        InterruptPipe.holdEarlySignals()
        defer { InterruptPipe.releaseEarlySignals() }
        let planEncoder = PlanFileEncoder()
        let plan = try prepare(encoder: planEncoder)
        let directory = OutputDirectory(layout: layout)
        let swept = directory.sweepTemporaryFiles()
        if swept > 0 { log("removed \(swept) temporary file(s) left by an interrupted run") }
        // Workers killed during this run (then retried) leave theirs too: sweep when it ends.
        defer { _ = directory.sweepTemporaryFiles() }
        let workers = workerCount
        let ingest = plan.tasks.filter { $0.id.stage == .ingest }
        let executable = options.workerExecutable ?? Self.currentExecutable()
        let launcher: any TaskLauncher
        let slots: Int
        let launchPolicy: SchedulerStateMachine.LaunchPolicy
        let target: String
        switch executorKind {
        case .local:
            launcher = ProcessLauncher(executable: executable, environment: options.workerEnvironment) {
                [layout] task in
                ["worker", "--task", task.id.description, layout.root, "--events"]
            }
            (slots, launchPolicy, target) = (workers, .whenReady, "\(workers) worker(s)")
        case .slurm:
            let cluster = try SlurmCluster.check(
                settings: configuration.executor.slurm, output: layout.root, executable: executable)
            launcher = SlurmLauncher(
                settings: configuration.executor.slurm, layout: layout, executable: executable,
                environment: options.workerEnvironment, maxArraySize: cluster.maxArraySize, log: log)
            // The cluster decides how many run at once; every task is submitted as soon as it can be.
            (slots, launchPolicy, target) = (1 << 30, .submitAhead, "Slurm (\(cluster.summary))")
        }
        log(
            "plan: \(plan.tasks.count) task(s), \(ingest.count) ingest task(s) over \(ingest.reduce(0) { $0 + ($1.inputs?.count ?? 0) }) input file(s), \(target) → \(layout.root)"
        )
        let layout = layout
        let executor = Executor(
            launcher: launcher, slots: slots, retries: options.retriesOverride ?? configuration.retries,
            expansions: plan.expansion.map { [$0.stage: $0.after] } ?? [:], launchPolicy: launchPolicy,
            expand: { _ in
                let expanded = try plan.expansion?.tasks(layout: layout) ?? []
                // The plan file shows the whole graph once it is known.
                try plan.including(expanded).write(to: layout, encoder: planEncoder)
                return expanded
            }, onEvent: onEvent)
        let (outcome, outcomes) = executor.run(plan.tasks)
        switch outcome {
        case .completed: break
        case .failed(let message): throw RunFailed(message: message)
        case .interrupted(let signal, let message): throw RunInterrupted(message: message, signal: signal)
        }
        var report: RunReport
        do {
            report = try StableJSON.decode(RunReport.self, from: layout.report)
        } catch {
            throw PipelineError(.damagedOutput, "\(layout.report): unreadable after the finalize task: \(error)")
        }
        report.timing = Self.timing(
            outcomes: outcomes, workers: executorKind == .local ? workers : 0, executor: executorKind,
            wall: Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9)
        try AtomicFileWriter.write(try StableJSON.encode(report), to: layout.report)
        return report
    }

    static func timing(
        outcomes: [TaskOutcome], workers: Int, executor: ExecutorSettings.Kind = .local, wall: Double
    ) -> RunTiming {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let coordinator =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        var stages: [String: StageTiming] = [:]
        for (stage, group) in Dictionary(grouping: outcomes, by: \.id.stage) {
            let started = group.map(\.started).min() ?? 0
            let finished = group.map(\.finished).max() ?? 0
            let reused = group.filter { $0.report?.reused == true }.count
            stages[stage.rawValue] = StageTiming(
                tasks: group.count - reused, reused: reused, wallSeconds: rounded(finished - started),
                cpuSeconds: rounded(group.reduce(0) { $0 + $1.usage.cpuSeconds }),
                peakRSSBytes: group.map(\.usage.peakRSSBytes).max() ?? 0,
                retries: group.reduce(0) { $0 + $1.attempts - 1 })
        }
        return RunTiming(
            executor: executor.rawValue, workers: workers, wallSeconds: rounded(wall),
            coordinatorCPUSeconds: rounded(coordinator),
            peakWorkerRSSBytes: outcomes.map(\.usage.peakRSSBytes).max() ?? 0, stages: stages)
    }

    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    /// This process's executable (workers are the same binary).
    static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
