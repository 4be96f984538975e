import ArgumentParser
import Foundation
import SluiceIO
import SluiceVectors

extension VectorFormat: ExpressibleByArgument {}
extension UnicodeErrors: ExpressibleByArgument {}

/// How a vectors file is opened: the same options for every vectors subcommand.
struct VectorFileOptions: ParsableArguments {
    @Argument(help: "A word2vec binary (.bin), word2vec/fastText text (.txt, .vec), GloVe text or safetensors file.")
    var vectors: String

    @Option(
        name: .long,
        help: "word2vec-binary, word2vec-text, glove or safetensors (default: detected from the content).")
    var format: VectorFormat?

    @Option(name: .long, help: "Read only the first N records (gensim's limit; 0: all).")
    var limit: Int?

    @Option(
        name: .long, help: "Invalid UTF-8 in a key: strict (an error), ignore or replace (gensim's unicode_errors).")
    var unicodeErrors: UnicodeErrors = .strict

    @Option(name: .long, help: "safetensors: the keys file, one per line (default: NAME.vocab.txt beside it).")
    var vocab: String?

    func load(quiet: Bool = false) -> WordVectors {
        let started = ContinuousClock.now
        let vectors: WordVectors
        do {
            vectors = try WordVectors.load(
                self.vectors,
                options: VectorLoadOptions(format: format, limit: limit, unicodeErrors: unicodeErrors, vocabFile: vocab)
            )
        } catch {
            fail(error)
        }
        if vectors.duplicatesDropped > 0 {
            FileHandle.standardError.write(
                Data(
                    "sluice: \(self.vectors): \(vectors.duplicatesDropped) repeated key(s) dropped; the first occurrence of each is kept (gensim keeps it too, but leaves an unnamed zero row)\n"
                        .utf8))
        }
        if !quiet && isatty(2) != 0 {
            let elapsed = seconds(ContinuousClock.now - started)
            FileHandle.standardError.write(
                Data(
                    "loaded \(vectors.count) × \(vectors.dim) (\(vectors.format.rawValue)) in \(String(format: "%.2f", elapsed)) s\n"
                        .utf8))
        }
        return vectors
    }
}

struct Vectors: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Pretrained word vectors (word2vec, GloVe, fastText, safetensors): gensim's queries, info, conversion.",
        discussion: """
            Files load bit-exactly as gensim 4.4's KeyedVectors.load_word2vec_format loads them, and \
            queries answer as gensim's methods do: the same words in the same order, scores within \
            2e-6. docs/VECTORS.md has the details.

            Examples:
              sluice vectors similar glove.6B.50d.txt king woman --minus man
              sluice vectors similarity glove.6B.50d.txt man woman
              echo '{"id": 1, "op": "most_similar", "args": {"positive": ["king"]}}' | sluice vectors query glove.6B.50d.txt
            """,
        subcommands: [
            VectorsQuery.self, VectorsSimilar.self, VectorsSimilarity.self, VectorsInfo.self, VectorsConvert.self,
        ]
    )
}

struct VectorsQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Answer JSON Lines queries on stdin with gensim's semantics, one answer line each, in order.",
        discussion: """
            A query: {"id": ANY, "op": OP, "args": {...}} with gensim's method names and argument \
            names. An answer: {"id": ..., "result": ...} or {"id": ..., "error": {"type": ..., \
            "message": ...}} with the exception gensim raises (KeyError "Key 'x' not present in \
            vocabulary", ...). The file is loaded once; answers are flushed per line, so a program \
            can hold the pipe open and ask one query at a time.

            Operations and their arguments:
            \(VectorQueryProtocol.operations.map { "  \($0.op): \($0.args)" }.joined(separator: "\n"))
            """)

    @OptionGroup var file: VectorFileOptions

    @Flag(name: .long, help: "At the end, print the load time and the time spent answering to stderr (one JSON line).")
    var timing = false

    func run() throws {
        let clock = ContinuousClock()
        let started = clock.now
        let vectors = file.load(quiet: true)
        let loaded = clock.now
        var answering = Duration.zero
        var answered = 0
        defer {
            if timing {
                let load = loaded - started
                FileHandle.standardError.write(
                    Data(
                        "{\"load_seconds\": \(seconds(load)), \"answer_seconds\": \(seconds(answering)), \"queries\": \(answered)}\n"
                            .utf8))
            }
        }
        let server = VectorQueryProtocol(vectors: vectors, loadedLimit: file.limit)
        var lineNumber = 0
        var output: [UInt8] = []
        let input = FileHandle.standardInput
        var pending: [UInt8] = []
        func flush() {
            guard !output.isEmpty else { return }
            output.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var offset = 0
                while offset < raw.count {
                    let written = Foundation.write(1, base + offset, raw.count - offset)
                    if written <= 0 { Foundation.exit(written == 0 ? 0 : 1) }
                    offset += written
                }
            }
            output.removeAll(keepingCapacity: true)
        }
        while true {
            let chunk = [UInt8](input.availableData)
            let atEnd = chunk.isEmpty
            pending += chunk
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                lineNumber += 1
                let line = pending[start..<newline]
                start = newline + 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let before = clock.now
                output += server.answer(line, lineNumber: lineNumber)
                answering += clock.now - before
                answered += 1
                output.append(0x0A)
            }
            pending.removeFirst(start)
            if atEnd && !pending.isEmpty && !pending.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                lineNumber += 1
                output += server.answer(pending[...], lineNumber: lineNumber)
                output.append(0x0A)
                pending.removeAll()
            }
            // One answer per query as it arrives for a program holding the pipe; batched otherwise.
            flush()
            if atEnd { break }
        }
    }
}

/// A duration in seconds.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Prints rows as aligned columns (numbers right-aligned), or as JSON for --json.
func printTable(header: [String], rows: [[String]], numeric: Set<Int>) {
    var widths = header.map(\.count)
    for row in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { column, cell in
            let pad = String(repeating: " ", count: widths[column] - cell.count)
            return numeric.contains(column) ? pad + cell : cell + pad
        }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
    }
    print(line(header))
    for row in rows { print(line(row)) }
}

struct VectorsSimilar: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similar",
        abstract: "The nearest words: gensim's most_similar(positive=WORDS, negative=--minus).",
        discussion: "Example: sluice vectors similar glove.6B.50d.txt king woman --minus man   →   queen 0.8524, …")

    @OptionGroup var file: VectorFileOptions

    @Argument(help: "Words to add (positive).")
    var words: [String] = []

    @Option(name: .long, help: "A word to subtract (negative); repeatable.")
    var minus: [String] = []

    @Option(name: .long, help: "How many neighbours to show.")
    var topn = 10

    @Option(name: .long, help: "Rank only the first N words of the file (gensim's restrict_vocab).")
    var restrictVocab: Int?

    @Flag(name: .long, help: "Rank by 3CosMul (most_similar_cosmul) instead of the cosine of the mean.")
    var cosmul = false

    @Flag(name: .long, help: "Print the answer as JSON ([[word, score], ...]).")
    var json = false

    func run() throws {
        guard !words.isEmpty || !minus.isEmpty else {
            throw ValidationError("give at least one word (and optionally --minus WORD)")
        }
        let vectors = file.load()
        let result: [WordVectors.Scored]
        do {
            let positive = words.map { WordVectors.Term.key($0, weight: nil) }
            let negative = minus.map { WordVectors.Term.key($0, weight: nil) }
            result =
                cosmul
                ? try vectors.mostSimilarCosmul(positive: positive, negative: negative, topn: topn)
                : try vectors.mostSimilar(
                    positive: positive, negative: negative, topn: topn, restrictVocab: restrictVocab)
        } catch {
            fail("\(error.kind.rawValue): \(error.message)")
        }
        if json {
            print(String(decoding: VectorQueryProtocol.scored(result), as: UTF8.self))
            return
        }
        let query = (words + minus.map { "-\($0)" }).joined(separator: " + ").replacingOccurrences(
            of: "+ -", with: "- ")
        print("\(cosmul ? "3CosMul" : "most similar") to \(query):")
        printTable(
            header: ["#", "word", "score"],
            rows: result.enumerated().map {
                [String($0.offset + 1), $0.element.key, String(format: "%.4f", $0.element.score)]
            },
            numeric: [0, 2])
    }
}

struct VectorsSimilarity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "similarity",
        abstract: "The cosine similarity of two words (gensim's similarity(w1, w2)).")

    @OptionGroup var file: VectorFileOptions

    @Argument(help: "The first word.")
    var first: String

    @Argument(help: "The second word.")
    var second: String

    @Flag(name: .long, help: "Print {\"similarity\": …, \"distance\": …} as JSON.")
    var json = false

    func run() throws {
        let vectors = file.load()
        do {
            let similarity = try vectors.similarity(first, second)
            let distance = try vectors.distance(first, second)
            if json {
                print("{\"similarity\": \(Double(similarity)), \"distance\": \(Double(distance))}")
            } else {
                print(
                    "similarity(\(first), \(second)) = \(String(format: "%.6f", similarity))   distance = \(String(format: "%.6f", distance))"
                )
            }
        } catch {
            fail("\(error.kind.rawValue): \(error.message)")
        }
    }
}

struct VectorsInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "What a vectors file holds: count, dimension, format, norms, repeated keys, checksums.")

    @OptionGroup var file: VectorFileOptions

    @Flag(name: .long, help: "Print the same as one JSON object.")
    var json = false

    func run() throws {
        let vectors = file.load()
        let summary = vectors.summary
        let sorted = vectors.norms.sorted()
        let zeroRows = vectors.norms.filter { $0 == 0 }.count
        let nonFinite = vectors.matrix.filter { !$0.isFinite }.count
        func norm(_ fraction: Double) -> Float {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(fraction * Double(sorted.count - 1)))]
        }
        let meanNorm = sorted.isEmpty ? Double.nan : sorted.reduce(0.0) { $0 + Double($1) } / Double(sorted.count)
        if json {
            let fields: [(String, String)] = [
                ("file", JSONNode.quoted(file.vectors)), ("format", "\"\(vectors.format.rawValue)\""),
                ("count", String(vectors.count)), ("dim", String(vectors.dim)),
                ("duplicates_dropped", String(vectors.duplicatesDropped)),
                ("norm_min", "\(Double(norm(0)))"), ("norm_median", "\(Double(norm(0.5)))"),
                ("norm_max", "\(Double(norm(1)))"), ("norm_mean", "\(meanNorm)"),
                ("zero_rows", String(zeroRows)), ("non_finite_values", String(nonFinite)),
                ("keys_sha256", "\"\(summary.keysSHA256)\""), ("vectors_sha256", "\"\(summary.vectorsSHA256)\""),
                (
                    "first_keys",
                    String(
                        decoding: VectorQueryProtocol.list(summary.firstKeys.map(VectorQueryProtocol.key)),
                        as: UTF8.self)
                ),
            ]
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
            return
        }
        print("\(file.vectors): \(vectors.format.rawValue), \(vectors.count) words × \(vectors.dim) dimensions")
        print("  norms: min \(norm(0)), median \(norm(0.5)), max \(norm(1)), mean \(String(format: "%.4f", meanNorm))")
        if zeroRows > 0 { print("  \(zeroRows) zero row(s): their cosine scores are NaN, as in gensim") }
        if nonFinite > 0 { print("  \(nonFinite) non-finite value(s) (inf or nan)") }
        if vectors.duplicatesDropped > 0 { print("  \(vectors.duplicatesDropped) repeated key(s) dropped") }
        print("  first keys: \(summary.firstKeys.joined(separator: " "))")
        print("  keys sha256 \(summary.keysSHA256)")
        print("  vectors sha256 \(summary.vectorsSHA256)")
    }
}

struct VectorsConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write vectors in another format, losslessly (the result loads to the same keys and float32 bits).",
        discussion: """
            Text is written as numpy writes it (the shortest repr that reads back to the same \
            float32), so gensim's save_word2vec_format and this give the same bytes. safetensors \
            writes OUT (tensor "vectors" F32 [count, dim]) and OUT's NAME.vocab.txt (one key per line).
            """)

    @OptionGroup var file: VectorFileOptions

    @Option(name: .long, help: "safetensors, word2vec-binary, word2vec-text or glove.")
    var to: VectorFormat

    @Argument(help: "The file to write (atomically).")
    var output: String

    func run() throws {
        let vectors = file.load()
        do {
            try vectors.write(to: output, format: to)
        } catch {
            fail(error)
        }
        var written = output
        if to == .safetensors { written += " and \(WordVectors.defaultVocabFile(for: output))" }
        print("wrote \(vectors.count) × \(vectors.dim) as \(to.rawValue) to \(written)")
    }
}
