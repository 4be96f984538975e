import ArgumentParser
import Dispatch
import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluicePipeline

#if canImport(Glibc)
    import Glibc
#endif

struct TrainBPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-bpe",
        abstract: "Learn a byte-level BPE vocabulary from a corpus — the same merges as HF tokenizers' BpeTrainer.",
        discussion: """
            Reads the inputs as sluice run's ingest does (files, directories, globs, JSON Lines, \
            archives), splits them with GPT-2's pre-tokenizer, counts the words on several threads, \
            and learns merges over the 256-byte alphabet until --vocab-size tokens (special tokens \
            and the 256 bytes included). Merges, their order and ties are HF tokenizers' \
            (BpeTrainer with a ByteLevel pre-tokenizer, add_prefix_space=False, initial_alphabet = \
            ByteLevel.alphabet()): among pairs of equal count, the one with the smaller ids wins.

            Writes OUT/vocab.tiktoken (a rank file: bytes, then merges; what tokenizer.vocab and \
            --vocab take), OUT/special_tokens.json (their ids, after every rank, for \
            tokenizer.special_tokens), and with --hf OUT/vocab.json + OUT/merges.txt (HF's \
            numbering: special tokens first).

            Example: sluice train-bpe corpus/ --vocab-size 32768 --special-token "<|endoftext|>" --out tok/
            """)

    @Argument(help: "Input files, directories or glob patterns.")
    var inputs: [String]

    @Option(name: .long, help: "Tokens in the vocabulary, special tokens and the 256 bytes included.")
    var vocabSize: Int

    @Option(name: .long, help: "Never merge a pair seen fewer times than this.")
    var minFrequency: Int = 0

    @Option(name: .long, help: "A special token (repeatable; ids in this order).")
    var specialToken: [String] = []

    @Option(name: .long, help: "Output directory.")
    var out: String

    @Flag(name: .long, help: "Also write HF-style vocab.json and merges.txt.")
    var hf = false

    @Option(name: .long, help: "Threads counting words (default: the CPU count).")
    var threads: Int?

    @Option(name: .long, help: "JSON Lines field holding the text.")
    var textField: String = "text"

    func validate() throws {
        guard vocabSize >= 256 + specialToken.count else {
            throw ValidationError(
                "--vocab-size must be at least 256 + the special tokens (\(256 + specialToken.count)), got \(vocabSize)"
            )
        }
        guard minFrequency >= 0 else { throw ValidationError("--min-frequency must be 0 or more") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if Set(specialToken).count != specialToken.count { throw ValidationError("a --special-token is repeated") }
    }

    func run() throws {
        let clock = DispatchTime.now().uptimeNanoseconds
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9 }
        let files: [InputFile]
        do {
            files = try InputResolver.expand(inputs, baseDirectory: FileManager.default.currentDirectoryPath)
        } catch {
            fail(error)
        }
        var ingestSettings = IngestSettings()
        ingestSettings.textField = textField
        let settings = ingestSettings
        let threadCount = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, files.count))
        let counted = CountedParts(count: threadCount)
        // Files are dealt round-robin; word counts add up the same whatever the split.
        DispatchQueue.concurrentPerform(iterations: threadCount) { thread in
            var counter = WordCounter()
            let reader = IngestReader(settings: settings) { document in
                switch document {
                case .bytes(let bytes): counter.add(document: bytes)
                case .spooled(let spool):
                    // Re-cut where no pre-token can cross, so that a huge document is never held.
                    var recut = SafeRecut()
                    let cut: (UnsafeBufferPointer<UInt8>) -> Int = { unsafe PreTokenizer.safeCut($0) }
                    let add: ([UInt8], Bool) -> Void = { text, _ in counter.add(document: text) }
                    try spool.forEachPiece(pieceBytes: IngestReader.streamThresholdBytes) { piece in
                        try recut.feed(Array(piece), last: false, safeCut: cut, add)
                    }
                    try recut.feed([], last: true, safeCut: cut, add)
                }
            }
            var failure: (any Error)?
            for index in stride(from: thread, to: files.count, by: threadCount) {
                do { try reader.read(files[index]) } catch {
                    failure = error
                    break
                }
            }
            counted.set(thread, counter: counter, report: reader.report, failure: failure)
        }
        var words = WordCounter()
        var report = IngestReport()
        for part in counted.parts {
            if let failure = part.failure { fail(failure) }
            words.merge(part.counter)
            report.merge(part.report)
        }
        let countSeconds = seconds()
        log(
            "counted \(words.counts.count) distinct words in \(report.documents) documents (\(words.byteCount) bytes) in \(String(format: "%.2f", countSeconds)) s on \(threadCount) thread(s)"
        )
        if report.skippedCount > 0 {
            log(
                "skipped \(report.skippedCount) item(s) while reading: \(report.skipped.keys.sorted().joined(separator: ", "))"
            )
        }

        let trainer = BPETrainer(vocabSize: vocabSize, minFrequency: minFrequency, specialTokens: specialToken)
        let result = trainer.train(words)
        let trainSeconds = seconds() - countSeconds

        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let vocabulary = try Vocabulary(tokensByRank: result.ranks, source: "trained")
            try AtomicFileWriter.write(vocabulary.tiktokenFile(), to: out + "/vocab.tiktoken")
            let specialIDs = result.specialTokenIDs(names: specialToken)
            try AtomicFileWriter.write(try StableJSON.encode(specialIDs), to: out + "/special_tokens.json")
            if hf {
                var vocab = "{"
                for (id, token) in result.tokens.enumerated() {
                    let text =
                        id < result.specialTokenCount
                        ? String(decoding: token, as: UTF8.self)
                        : String(decoding: BPETrainer.byteLevelString(token), as: UTF8.self)
                    vocab += (id == 0 ? "" : ",") + JSONNode.quoted(text) + ":\(id)"
                }
                try AtomicFileWriter.write(Array((vocab + "}\n").utf8), to: out + "/vocab.json")
                var merges = "#version: 0.2\n"
                for merge in result.merges {
                    merges +=
                        String(decoding: BPETrainer.byteLevelString(result.tokens[merge.left]), as: UTF8.self) + " "
                        + String(decoding: BPETrainer.byteLevelString(result.tokens[merge.right]), as: UTF8.self)
                        + "\n"
                }
                try AtomicFileWriter.write(Array(merges.utf8), to: out + "/merges.txt")
            }
        } catch {
            fail(error)
        }
        let specialJSON =
            "{"
            + result.specialTokenIDs(names: specialToken).sorted { $0.key < $1.key }.map {
                JSONNode.quoted($0.key) + ": \($0.value)"
            }.joined(separator: ", ") + "}"
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(
            """
            sluice train-bpe: \(result.tokens.count) tokens (\(result.specialTokenCount) special, 256 bytes, \(result.tokens.count - 256 - result.specialTokenCount) merged) from \(result.merges.count) merges → \(out)/vocab.tiktoken
              time       counting \(String(format: "%.2f", countSeconds)) s, merging \(String(format: "%.2f", trainSeconds)) s; peak RSS \(usage.ru_maxrss / 1024) MiB
              use it     "tokenizer": {"vocab": "\(out)/vocab.tiktoken", "special_tokens": \(specialJSON)}
            """)
        if result.tokens.count < vocabSize {
            log(
                "note: stopped at \(result.tokens.count) tokens, below --vocab-size \(vocabSize): no pair left with count ≥ max(1, --min-frequency)"
            )
        }
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data(("sluice train-bpe: " + message + "\n").utf8))
    }
}

/// Each counting thread's result, filled in by that thread only.
private final class CountedParts: @unchecked Sendable {
    // Invariant: slot `i` is written once, by thread `i`, under `lock`; read after all threads end.
    struct Part {
        var counter = WordCounter()
        var report = IngestReport()
        var failure: (any Error)?
    }

    private let lock = NSLock()
    private var storage: [Part]

    init(count: Int) { storage = Array(repeating: Part(), count: count) }

    func set(_ index: Int, counter: WordCounter, report: IngestReport, failure: (any Error)?) {
        lock.withLock { storage[index] = Part(counter: counter, report: report, failure: failure) }
    }

    var parts: [Part] { lock.withLock { storage } }
}
