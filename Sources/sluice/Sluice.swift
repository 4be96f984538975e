import ArgumentParser
internal import CSluiceBuildInfo
import Foundation

/// What `sluice --version` prints: the release and the commit it was built from.
enum SluiceVersion {
    static let release = "0.3.0"
    static var text: String {
        let commit = String(cString: sluice_source_commit())
        return commit.isEmpty
            ? "sluice \(release) (source commit not recorded: built by swift build; scripts/dev install records it)"
            : "sluice \(release) (source commit \(commit))"
    }
}

@main
struct Sluice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Turn raw text corpora into training-ready token streams for language models.",
        discussion: """
            Stages: ingest (files, directories, JSONL, tar/zip/7z/… archives → documents), \
            tokenize (GPT-2 byte-level BPE, exactly tiktoken's ids), window (GPTDatasetV1 windows \
            and batches, or the token stream itself), materialize (token + position embeddings, \
            bit-exact with PyTorch, in LZ4-compressed safetensors shards). sluice run runs them as worker processes. \
            train-bpe learns a vocabulary with HF tokenizers' merges. See README.md and docs/.

            Exit status: 0 success; 1 failure (one paragraph on stderr says what and where); \
            64 bad command line; 3 finished, but --strict and some input was skipped.
            """,
        version: SluiceVersion.text,
        subcommands: [
            Run.self, Status.self, PlanCommand.self, Verify.self, Inspect.self, Stats.self, Encode.self, Decode.self,
            Tables.self,
            TrainBPE.self, Vectors.self,
            Config.self, Worker.self,
        ]
    )
}

/// Prints `error` as one paragraph on stderr and exits 1: no stack traces for bad input.
func fail(_ error: any Error) -> Never {
    let text = "\(error)"
    FileHandle.standardError.write(Data("sluice: \(text)\n".utf8))
    Foundation.exit(1)
}

/// Prints `message` as one paragraph on stderr and exits 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("sluice: \(message)\n".utf8))
    Foundation.exit(1)
}
