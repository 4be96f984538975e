import ArgumentParser
import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluicePipeline

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a pipeline config: plan its tasks, run them as worker processes, resume what a previous run left.",
        discussion: """
            Each task (ingest and tokenize per part, window, materialize per shard, finalize) runs \
            as a `sluice worker` child process, at most --workers at a time, as soon as the tasks \
            it reads from are done. A failed task is retried ("retries" in the config, default 2) \
            unless the failure is one a retry cannot fix; Ctrl-C stops the workers and keeps every \
            finished task. Running the same command again resumes: a task whose completion record \
            holds and whose identity (exactly the settings and inputs its outputs depend on) is \
            unchanged is reused, whatever --workers was before — so after changing only the \
            window, embedding or shards settings, ingest and tokenize are reused. The output \
            depends only on the config's output-defining settings and the inputs.

            Writes OUT/docs/, OUT/tokens/ (with "tokenizer"), OUT/shards/, OUT/tables/ and \
            OUT/manifest.json (with "window"), and OUT/report.json: counts, everything skipped \
            or repaired, and per stage the tasks run and reused, wall time, CPU time and peak \
            worker RSS.

            With --executor slurm (or "executor": {"kind": "slurm"} in the config) the same tasks \
            run as Slurm job arrays, one per stage, each job depending on exactly the jobs it reads \
            from; OUT, the inputs and the binary must be on a file system the compute nodes share. \
            Failed jobs are retried as new jobs, Ctrl-C cancels every job the run submitted, \
            --detach submits the coordinator itself as a job and exits, and sluice status OUT \
            shows progress. See docs/SLURM.md.

            Example: sluice run pipelines/verdict-ch02.json --out /tmp/verdict
            """)

    @Argument(help: "The pipeline config (JSON, format 1).")
    var config: String

    @Option(name: .long, help: "Output directory (overrides the config's \"output\").")
    var out: String?

    @Option(name: .long, help: "Tasks at once (overrides the config's \"workers\"; never changes the output).")
    var workers: Int?

    @Flag(name: .long, help: "Exit with status 3 if any input was skipped.")
    var strict = false

    @Flag(
        name: .long,
        help:
            "Start over: remove what earlier runs left in the output directory (and make outputs that look too big for the free disk)."
    )
    var force = false

    @Flag(
        name: .long,
        help:
            "Write embeddings even when they exceed 64 times the text and 1 GiB (sluice plan shows the projected sizes)."
    )
    var allowLargeOutput = false

    @Option(
        name: .long,
        help: "The sluice binary the workers run (default: this one), e.g. a copy on a shared file system.")
    var workerBinary: String?

    @Option(name: .long, help: "Times a failed task is retried (overrides the config's \"retries\").")
    var retries: Int?

    @Option(
        name: .long,
        help:
            "Where tasks run: local (worker processes here) or slurm (job arrays on the Slurm cluster sbatch reaches; see docs/SLURM.md). Overrides the config's \"executor\"."
    )
    var executor: ExecutorSettings.Kind?

    @Flag(
        name: .long,
        help:
            "With --executor slurm: submit the run's coordinator as a job and exit, printing its job id; follow it with sluice status OUT."
    )
    var detach = false

    @Option(
        name: .long,
        help:
            "Progress: auto (live lines on a terminal, plain lines otherwise), text, or json (one object per line on stderr)."
    )
    var log: LogFormat = .auto

    enum LogFormat: String, ExpressibleByArgument { case auto, text, json }

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
        if let retries, retries < 0 { throw ValidationError("--retries must be 0 or more, got \(retries)") }
        if detach && executor == .local { throw ValidationError("--detach needs --executor slurm") }
    }

    func run() throws {
        let configuration: Configuration
        do {
            configuration = try Configuration.load(file: config)
        } catch {
            fail(error)
        }
        var options = PipelineRunner.Options()
        options.outputOverride = out.map { URL(fileURLWithPath: $0).standardized.path }
        options.workersOverride = workers
        options.force = force
        options.allowLargeOutput = allowLargeOutput
        options.workerExecutable = workerBinary
        options.retriesOverride = retries
        options.executorOverride = executor
        var runner = PipelineRunner(configuration: configuration, options: options)
        if detach {
            guard runner.executorKind == .slurm else {
                fail("--detach needs --executor slurm (or \"executor\": {\"kind\": \"slurm\"} in the config)")
            }
            var passOn: [String] = []
            if let retries { passOn += ["--retries", String(retries)] }
            if let workerBinary { passOn += ["--worker-binary", workerBinary] }
            do {
                let job = try runner.submitDetached(configFile: config, arguments: passOn)
                print(
                    """
                    sluice run: submitted the coordinator as Slurm job \(job) → \(runner.layout.root)
                      progress   sluice status \(runner.layout.root)
                      its log    \(runner.layout.logsDirectory)/coordinator.log
                      cancel     scancel \(job)   (it cancels the jobs it submitted; the same command resumes)
                    """)
            } catch {
                fail(error)
            }
            return
        }
        let mode: ProgressBoard.Mode =
            switch log {
            case .json: .json
            case .text: .lines
            case .auto: isatty(2) != 0 ? .terminal : .lines
            }
        let board = ProgressBoard(mode: mode)
        runner.onEvent = { board.handle($0) }
        if log == .json {
            runner.log = { line in
                FileHandle.standardError.write(
                    Data(("{\"event\":\"log\",\"message\":" + JSONNode.quoted(line) + "}\n").utf8))
            }
        }
        let summary: RunReport
        do {
            summary = try runner.run()
            board.close()
        } catch let interrupted as RunInterrupted {
            board.close()
            FileHandle.standardError.write(Data("sluice: \(interrupted.message)\n".utf8))
            throw ExitCode(128 + interrupted.signal)
        } catch {
            board.close()
            fail(error)
        }
        printSummary(summary, root: runner.layout.root)
        let partial = summary.ingest.partialInputs
        if !partial.isEmpty && configuration.ingest.onTruncatedInput == .fail {
            FileHandle.standardError.write(
                Data(
                    "sluice: \(partial.count) input(s) were not read completely (listed above and as partial_inputs in \(runner.layout.manifest)); fix or re-download them, or set ingest.on_truncated_input to \"keep\" to accept them (exit 4)\n"
                        .utf8))
            throw ExitCode(4)
        }
        if strict && summary.ingest.skippedCount > 0 {
            FileHandle.standardError.write(
                Data(
                    "sluice: --strict: \(summary.ingest.skippedCount) item(s) were skipped; see \(runner.layout.report)\n"
                        .utf8))
            throw ExitCode(3)
        }
    }

    func printSummary(_ summary: RunReport, root: String) {
        let report = summary.ingest
        var lines = [
            "sluice run: done → \(root)",
            "  inputs     \(report.inputFiles) file(s), \(report.inputBytes) bytes",
            "  documents  \(report.documents) (\(report.documentBytes) bytes of text) in \(summary.docsParts) part(s)",
        ]
        if let tokens = summary.tokens { lines.append("  tokens     \(tokens) in \(summary.tokensParts ?? 0) part(s)") }
        if let vocabulary = summary.vocabulary {
            lines.append(
                "  words      vocabulary \(vocabulary.size); \(vocabulary.unknownTokens) token(s) <|unk|> (\(String(format: "%.2f", 100 * vocabulary.unknownRate)) %), \(vocabulary.unknownPieces) distinct unknown piece(s)"
            )
            if let vectors = vocabulary.vectors {
                lines.append(
                    "  vectors    \(vectors.rowsFromVectors) of \(vectors.rowsFromVectors + vectors.rowsWithoutVector) rows from \(vectors.file); \(vectors.tokensWithoutVector) of \(vectors.streamTokens) stream tokens have no vector"
                )
            }
        }
        if let windows = summary.windows, let batches = summary.batches, let shards = summary.shards {
            lines.append(
                "  windows    \(windows) → \(batches) batches in \(shards) shard(s); manifest: \(root)/manifest.json")
        }
        if report.invalidUTF8Replaced > 0 {
            lines.append(
                "  repaired   \(report.invalidUTF8Replaced) invalid UTF-8 sequence(s) in \(report.documentsWithInvalidUTF8) document(s)"
            )
        }
        if report.invalidUTF8Replaced + report.loneSurrogatesReplaced > 0, let first = report.repairsByFile.first {
            lines.append(
                "             first in \(IngestError.escaped(first.file)) (\(report.repairsByFile.count) file(s) listed in report.json as repairs_by_file)"
            )
        }
        if report.duplicateKeysResolved > 0 {
            lines.append(
                "  resolved   \(report.duplicateKeysResolved) JSONL record(s) with a repeated key (the last value used, as Python's json does)"
            )
        }
        if let timing = summary.timing {
            let stages = SluicePipeline.Stage.allCases.compactMap { stage in
                timing.stages[stage.rawValue].map {
                    stage.rawValue + String(format: " %.1f s", $0.wallSeconds)
                        + ($0.reused > 0 ? " (\($0.reused) of \($0.tasks + $0.reused) reused)" : "")
                }
            }
            lines.append(
                String(format: "  time       %.1f s with %d worker(s) (", timing.wallSeconds, timing.workers)
                    + stages.joined(separator: ", ")
                    + String(
                        format: "); peak worker RSS %.0f MiB; coordinator CPU %.2f s",
                        Double(timing.peakWorkerRSSBytes) / 1_048_576, timing.coordinatorCPUSeconds))
        }
        if report.skipped.isEmpty {
            lines.append("  skipped    nothing")
        } else {
            for (reason, count) in report.skipped.sorted(by: { $0.key < $1.key }) {
                lines.append("  skipped    \(count.count) × \(reason) (\(count.bytes) bytes)")
                if let first = report.problems.first(where: { $0.reason == reason }) {
                    lines.append("             first: \(Self.describe(first))")
                }
            }
            lines.append("  details    \(root)/report.json")
        }
        for input in report.partialInputs.prefix(20) {
            var location = IngestError.escaped(input.file)
            if let member = input.member { location += ": member \"\(IngestError.escaped(member))\"" }
            if let offset = input.offset { location += " at byte \(offset)" }
            lines.append("  partial    \(location) (\(input.reason))")
        }
        if report.partialInputs.count > 20 {
            lines.append("  partial    … and \(report.partialInputs.count - 20) more in report.json")
        }
        print(lines.joined(separator: "\n"))
    }
}

extension Run {
    /// One problem as one line, as IngestError prints it.
    static func describe(_ problem: IngestReport.Problem) -> String {
        let reason = IngestError.Reason(rawValue: problem.reason) ?? .unreadableFile
        return IngestError(
            reason, file: problem.file, member: problem.member, line: problem.line, offset: problem.offset,
            problem.message
        ).description
    }
}

extension ExecutorSettings.Kind: ExpressibleByArgument {}

extension Seed: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// `sluice status OUT`: where a run stands, from its records and `squeue`.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how far a run has come: tasks done per stage and, for Slurm runs, the state of their jobs.",
        discussion: """
            Reads OUT/_work/plan.json and each task's files; for a Slurm run also OUT/_work/slurm/jobs.json \
            (every job array submitted, element i running tasks[i]) and asks squeue about those jobs. \
            Works during a run, after it, and for a run started with --detach. Exit status 0 when the \
            run is complete, 2 when it is not (yet).
            """)

    @Argument(help: "The output directory of a run.")
    var out: String

    func run() throws {
        let status: RunStatus
        do {
            status = try RunStatus.read(OutputLayout(root: URL(fileURLWithPath: out).standardized.path))
        } catch {
            fail(error)
        }
        print(status.text)
        if !status.complete { throw ExitCode(2) }
    }
}
