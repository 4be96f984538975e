import ArgumentParser
import Foundation
import SluiceConfig
import SluiceIO
import SluicePipeline

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the tasks a config makes (the same graph sluice run writes to OUT/_work/plan.json).",
        discussion:
            "Tasks depend only on the config and the input files, never on --workers, so their outputs keep their names across runs."
    )

    @Argument(help: "The pipeline config (JSON, format 1).")
    var config: String

    @Flag(name: .long, help: "Print the plan as JSON instead of one line per task.")
    var json = false

    func run() throws {
        do {
            let configuration = try Configuration.load(file: config)
            let graph = try Plan(configuration: configuration).graph(window: configuration.window != nil)
            if json {
                print(graph.serialized())
                return
            }
            guard case .array(let tasks)? = graph["tasks"]?.value else { return }
            for task in tasks {
                var line = task["id"]?.string ?? "?"
                if case .array(let inputs)? = task["inputs"]?.value {
                    line += "  \(inputs.count) input(s)"
                    if case .integer(let bytes)? = task["input_bytes"]?.value { line += ", \(bytes) bytes" }
                }
                if case .array(let needs)? = task["needs"]?.value, !needs.isEmpty {
                    line += needs.count == 1 ? "  after \(needs[0].string ?? "?")" : "  after \(needs.count) tasks"
                }
                print(line)
            }
        } catch {
            fail(error)
        }
    }
}

struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one task of a plan (what sluice run starts; also for cluster array jobs).",
        discussion: """
            Writes exactly the files sluice run writes for that task, and skips it if its outputs
            already match their completion record. Stages, in order: tokenizer (no --part; the
            vocabulary as a rank file for the tokenize tasks), ingest and tokenize (--part is the
            part number of sluice plan), window (no --part; after every tokenize task),
            materialize (--part is the shard number, from OUT/_work/window.json). For example, a
            Slurm array over the ingest parts:
              sluice worker ingest pipeline.json --out OUT --part $SLURM_ARRAY_TASK_ID

            Exit status: 0 done (or already done); 65 failed in a way a retry cannot fix (bad
            input, config or vocabulary); 1 any other failure (I/O), which sluice run retries.
            """)

    @Argument(help: "The stage: tokenizer, ingest, tokenize, window or materialize.")
    var stage: String

    @Argument(help: "The pipeline config (JSON, format 1).")
    var config: String

    @Option(name: .long, help: "Output directory (as given to sluice run).")
    var out: String?

    @Option(name: .long, help: "The task's part number (ingest, tokenize) or shard number (materialize).")
    var part: Int?

    @Flag(name: .long, help: "Report progress as JSON lines on stdout (what sluice run reads).")
    var events = false

    @Flag(name: .long, help: "window: make the tables and shards even when they look too big for the free disk.")
    var force = false

    func run() throws {
        WorkerEvents.watchLifeline()
        let id =
            stage
            + (part.map { "/" + (stage == "materialize" ? "shard-" : "part-") + String(format: "%05d", $0) } ?? "")
        // For executor tests: make this task crash (SIGKILL itself) as a real fault would.
        if let crash = ProcessInfo.processInfo.environment["SLUICE_TEST_CRASH_TASK"], crash == id {
            kill(getpid(), SIGKILL)
        }
        do {
            let configuration = try Configuration.load(file: config)
            var options = PipelineRunner.Options()
            options.outputOverride = out.map { URL(fileURLWithPath: $0).standardized.path }
            options.force = force && stage == "window"
            try PipelineRunner(configuration: configuration, options: options).runTask(
                stage: stage, part: part, events: WorkerEvents(enabled: events))
        } catch let error as IOError {
            fail(error)  // exit 1: the executor retries (a disk may have room again, a file may come back)
        } catch {
            // Bad input, config or vocabulary: the same inputs would fail again.
            FileHandle.standardError.write(Data("sluice: \(error)\n".utf8))
            Foundation.exit(LocalExecutor.permanentFailureStatus)
        }
    }
}
