import ArgumentParser
import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluicePipeline

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pipeline config: plan its tasks, run them, resume what a previous run left.",
        discussion: """
            Writes OUT/docs/part-NNNNN.lz4 (+ .json sidecars), OUT/tokens/… when the config has a
            "tokenizer" section, and OUT/report.json with everything skipped or repaired. A re-run
            skips the tasks whose outputs still match their checksums.

            Example: sluice run pipelines/verdict-tokens.json --out /tmp/verdict
            """)

    @Argument(help: "The pipeline config (JSON, format 1).")
    var config: String

    @Option(name: .long, help: "Output directory (overrides the config's \"output\").")
    var out: String?

    @Option(name: .long, help: "Tasks at once (overrides the config's \"workers\"; never changes the output).")
    var workers: Int?

    @Flag(name: .long, help: "Exit with status 3 if any input was skipped.")
    var strict = false

    @Flag(name: .long, help: "Start over in an output directory made with a different config.")
    var force = false

    @Option(name: .long, help: "Log format: text or json (one object per line).")
    var log: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument { case text, json }

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1, got \(workers)") }
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
        options.strict = strict
        options.force = force
        var runner = PipelineRunner(configuration: configuration, options: options)
        if log == .json {
            runner.log = { line in
                FileHandle.standardError.write(Data(("{\"message\":" + JSONNode.quoted(line) + "}\n").utf8))
            }
        }
        let summary: PipelineRunner.Summary
        do {
            summary = try runner.run()
        } catch {
            fail(error)
        }
        printSummary(summary, root: runner.layout.root)
        if strict && summary.ingest.skippedCount > 0 {
            FileHandle.standardError.write(
                Data(
                    "sluice: --strict: \(summary.ingest.skippedCount) item(s) were skipped; see \(runner.layout.report)\n"
                        .utf8))
            throw ExitCode(3)
        }
    }

    func printSummary(_ summary: PipelineRunner.Summary, root: String) {
        let report = summary.ingest
        var lines = [
            "sluice run: done → \(root)",
            "  inputs     \(report.inputFiles) file(s), \(report.inputBytes) bytes",
            "  documents  \(report.documents) (\(report.documentBytes) bytes of text) in \(summary.docsParts) part(s)",
        ]
        if let tokens = summary.tokens { lines.append("  tokens     \(tokens) in \(summary.tokensParts ?? 0) part(s)") }
        if let windows = summary.windows, let batches = summary.batches, let shards = summary.shards {
            lines.append(
                "  windows    \(windows) → \(batches) batches in \(shards) shard(s); manifest: \(root)/manifest.json")
        }
        if report.invalidUTF8Replaced > 0 {
            lines.append(
                "  repaired   \(report.invalidUTF8Replaced) invalid UTF-8 sequence(s) in \(report.documentsWithInvalidUTF8) document(s)"
            )
        }
        if report.skipped.isEmpty {
            lines.append("  skipped    nothing")
        } else {
            for (reason, count) in report.skipped.sorted(by: { $0.key < $1.key }) {
                lines.append("  skipped    \(count.count) × \(reason) (\(count.bytes) bytes)")
            }
            lines.append("  details    \(root)/report.json")
        }
        print(lines.joined(separator: "\n"))
    }
}
