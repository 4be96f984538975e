import ArgumentParser
import Foundation
import SluiceConfig
import SluiceIO
import SluicePipeline

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the task graph of a config — the same graph sluice run writes to OUT/_work/plan.json.",
        discussion: """
            Tasks depend only on the config and the input files, never on --workers or the executor, \
            so their outputs keep their names across runs. The materialize tasks (one per shard) are \
            known once the window task has run: with --out, an output directory that has its window \
            record shows them too.

            With --out OUT --write, prepares OUT for running tasks by hand or on a cluster — the run \
            record and the plan, as sluice run would — without running anything; then \
            `sluice worker --task ID OUT` runs each task, in the order of the plan.

            Last, the projected output: bytes per stage and in total, from the input sizes and \
            0.30 GPT-2 tokens a byte — exact token counts once this output's tokenize tasks have \
            run (give --out). Embeddings take output_dim values a token: hundreds of times the text.
            """)

    @Argument(help: "The pipeline config (JSON, format 1).")
    var config: String

    @Option(name: .long, help: "Output directory (overrides the config's \"output\").")
    var out: String?

    @Flag(name: .long, help: "Write OUT/_work/run.json and OUT/_work/plan.json so that workers can run the tasks.")
    var write = false

    @Flag(name: .long, help: "Print the plan as JSON (the plan file's format) instead of one line per task.")
    var json = false

    func validate() throws {
        if write && out == nil { throw ValidationError("--write needs --out OUT") }
    }

    func run() throws {
        do {
            let configuration = try Configuration.load(file: config)
            try ReferencedFiles.check(configuration)
            var options = PipelineRunner.Options()
            options.outputOverride = out.map { URL(fileURLWithPath: $0).standardized.path }
            let runner = PipelineRunner(configuration: configuration, options: options)
            var plan = write ? try runner.prepare() : try Plan(configuration: configuration)
            if out != nil, let expanded = try? plan.expansion?.tasks(layout: runner.layout) {
                plan = plan.including(expanded)
            }
            if json {
                FileHandle.standardOutput.write(Data(try plan.encoded()))
                return
            }
            for task in plan.tasks {
                var line = task.id.description
                if let inputs = task.inputs { line += "  \(inputs.count) input(s), \(task.weight) bytes" }
                if let batches = task.batches {
                    line += "  batches \(batches.first)..<\(batches.first + batches.count)"
                }
                let needs = task.needs.map(\.description) + task.needsEvery.map { "every \($0) task" }
                if !needs.isEmpty { line += needs.count == 1 ? "  after \(needs[0])" : "  after \(needs.count) tasks" }
                print(line)
            }
            if let expansion = plan.expansion, !plan.tasks.contains(where: { $0.id.stage == expansion.stage }) {
                print(
                    "\(expansion.stage)/…  one task per shard, listed in \(expansion.record) by the \(expansion.after) task"
                )
            }
            print(OutputEstimate(configuration: configuration, plan: plan, layout: runner.layout).text)
            if write {
                print(
                    "prepared \(runner.layout.root): run each task with sluice worker --task ID \(runner.layout.root)")
            }
        } catch {
            fail(error)
        }
    }
}

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one task of a prepared output directory (what sluice run starts; also for cluster jobs).",
        discussion: """
            Reads the task's spec from OUT/_work/plan.json and the run's config from OUT/_work/run.json \
            (written by sluice run, or by sluice plan CONFIG --out OUT --write), and writes exactly \
            the files sluice run writes for that task. A task whose completion record holds and \
            whose identity is unchanged reports itself reused. Task ids are those of sluice plan: \
            ingest/part-00003, tokenizer, tokenize/part-00003, window, materialize/shard-00002, \
            finalize. For example, one Slurm array task per ingest part:
              sluice worker --task ingest/part-$(printf %05d $SLURM_ARRAY_TASK_ID) OUT

            Exit status: 0 done (or reused); 65 failed in a way a retry cannot fix (bad input, \
            config, vocabulary, an upstream task that has not run); 75 failed in a way a retry may \
            fix (I/O). Executors retry 75, crashes and signals.
            """)

    @Option(name: .long, help: "The task, e.g. tokenize/part-00003 (see sluice plan).")
    var task: String

    @Argument(help: "The output directory the run was prepared in.")
    var out: String

    @Flag(name: .long, help: "Report progress as JSON lines on stdout (what sluice run reads).")
    var events = false

    func validate() throws {
        guard TaskID(parsing: task) != nil else {
            throw ValidationError(
                "--task: \"\(task)\" is not a task id; ids look like ingest/part-00003, tokenizer, window, materialize/shard-00002, finalize (see sluice plan)"
            )
        }
    }

    func run() throws {
        WorkerEvents.watchLifeline()
        let reporter = WorkerEvents(enabled: events)
        guard let id = TaskID(parsing: task) else { throw ExitCode.validationFailure }
        do {
            let layout = OutputLayout(root: URL(fileURLWithPath: out).standardized.path)
            reporter.done(try TaskRunner.run(id, layout: layout, events: reporter))
        } catch {
            let failure = PipelineError.classify(error)
            FileHandle.standardError.write(Data("sluice: \(failure)\n".utf8))
            Foundation.exit(WorkerExit.status(for: failure))
        }
    }
}
