import ArgumentParser
import Foundation
import SluiceIO
import SluicePipeline

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-check every checksum, shape and count an output directory's manifest promises.",
        discussion:
            "Exit 0 when everything matches (an output made from inputs that were not read completely is warned about on stderr); otherwise exit 1 and one line per problem, naming the file."
    )

    @Argument(help: "An output directory of sluice run (with manifest.json).")
    var out: String

    func run() throws {
        let outcome = OutputVerifier.verify(root: out)
        for warning in outcome.warnings {
            FileHandle.standardError.write(Data("sluice verify: warning: \(warning)\n".utf8))
        }
        if outcome.problems.isEmpty {
            print("\(out): OK — \(outcome.checkedFiles) files, \(outcome.checkedBytes) bytes match the manifest")
            return
        }
        for problem in outcome.problems { print("sluice verify: \(problem)") }
        fail("\(out): \(outcome.problems.count) problem(s) found")
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize an output directory; with --batch K, show batch K's windows as ids and text.")

    @Argument(help: "An output directory of sluice run (with manifest.json).")
    var out: String

    @Option(name: .long, help: "A batch index to decode back to text.")
    var batch: Int?

    func run() throws {
        do {
            print(try OutputInspector.describe(root: out, batch: batch))
        } catch {
            fail(error)
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what an output holds: tokens per document, per input file, bytes per token, what was skipped.",
        discussion: """
            Reads the run's sidecars, per-document token counts and report, never the shards, so it \
            is quick on any output size. Tokens per document are shown as percentiles and a \
            histogram in powers of two; --json prints the same numbers for scripts.
            """)

    @Argument(help: "An output directory of sluice run (with a tokenizer section).")
    var out: String

    @Flag(name: .long, help: "Print the statistics as one JSON object.")
    var json = false

    func run() throws {
        do {
            let stats = try OutputStats.read(root: out)
            if json {
                print(String(decoding: try StableJSON.encode(stats), as: UTF8.self), terminator: "")
            } else {
                print(stats.text(root: out))
            }
        } catch {
            fail(error)
        }
    }
}
