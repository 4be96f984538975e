import ArgumentParser
import SluicePipeline

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-check every checksum, shape and count an output directory's manifest promises.",
        discussion: "Exit 0 when everything matches; otherwise exit 1 and one line per problem, naming the file.")

    @Argument(help: "An output directory of sluice run (with manifest.json).")
    var out: String

    func run() throws {
        let outcome = OutputVerifier.verify(root: out)
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
