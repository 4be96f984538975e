import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceVectors
import SluiceWords

/// The tokenizer task: the run's vocabulary, once, as a tiktoken rank file every tokenize task
/// loads quickly (a third of the time of GPT-2's encoder.json + vocab.bpe) — loaded from the
/// config's files, or learned from the count tasks' word counts with `tokenizer.train`.
public enum TokenizerStage: StageRunner {
    /// `_work/tokenizer.json`: the completion record of the tokenizer task.
    public struct Record: Codable, Sendable {
        var format = "sluice.tokenizer.v2"
        /// SHA-256 of the rank file's bytes, then each special token as "name id\n" in name
        /// order: what tokens parts name as the tokenizer that made them.
        var sha256: String
        var tiktokenSHA256: String
        var specialTokens: [String: UInt32]
        var ranks: Int
        var idUpperBound: Int
        /// What the vocabulary was made from (settings and file contents, or word counts).
        var identity: String
        /// "words" for the word-level tokenizer (its file is `tokenizer.words.txt`); nil: BPE.
        var kind: String?
        /// Word-level: pieces are looked up lower-cased.
        var lowercase: Bool?
        var isWords: Bool { kind == "words" }
        enum CodingKeys: String, CodingKey {
            case kind, lowercase
            case format, sha256
            case tiktokenSHA256 = "tiktoken_sha256"
            case specialTokens = "special_tokens"
            case ranks
            case idUpperBound = "id_upper_bound"
            case identity
        }
    }

    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let configuration = context.configuration
        let layout = context.layout
        guard let settings = configuration.tokenizer else {
            throw PipelineError(.config, "\(configuration.file): no \"tokenizer\" section")
        }
        if let words = settings.words { return try runWords(task, words: words, context: context) }
        if let train = settings.train {
            let counts = try task.needs.map { count in
                try Completion.upstream(
                    CountStage.Sidecar.self, layout.wordCountsSidecar(count.index ?? 0), from: count, for: task.id)
            }
            let names = train.specialTokenOrder(settings.specialTokens)
            var hasher = IdentityHasher(.tokenizer)
            hasher.add("tokenizer", section: configuration.resolved["tokenizer"])
            hasher.add("counts", counts.map(\.sha256))
            let identity = hasher.finalize()
            if let record = intactRecord(layout: layout), record.identity == identity {
                return TaskReport("tokenizer: already trained, \(record.ranks) ranks", reused: true)
            }
            let encoder = try self.train(
                counts: counts, settings: train, specialTokens: settings.specialTokens, names: names, layout: layout)
            let record = try write(encoder, identity: identity, layout: layout)
            return TaskReport(
                "tokenizer: trained \(record.ranks) ranks (\(record.ranks - 256) merges) from \(counts.reduce(0) { $0 + $1.words }) part-distinct words",
                reused: false)
        }
        let vocab = configuration.resolvePath(settings.vocab)
        let merges = settings.merges.map(configuration.resolvePath)
        var hasher = IdentityHasher(.tokenizer)
        hasher.add("tokenizer", section: configuration.resolved["tokenizer"])
        for file in [vocab] + (merges.map { [$0] } ?? []) {
            do {
                hasher.add("file", try SHA256Hasher.hex(ofFile: file))
            } catch {
                throw PipelineError(
                    .tokenizer, "tokenizer: \(error) (tokenizer.vocab / tokenizer.merges in \(configuration.file))",
                    path: file)
            }
        }
        let identity = hasher.finalize()
        if let record = intactRecord(layout: layout), record.identity == identity {
            return TaskReport(
                "tokenizer: already done, \(record.ranks) ranks, id range \(record.idUpperBound)", reused: true)
        }
        let encoder: BPEEncoder
        do {
            encoder = try BPEEncoder.load(vocab: vocab, merges: merges, specialTokens: settings.specialTokens)
        } catch {
            throw PipelineError(.tokenizer, "tokenizer: \(error)", underlying: error)
        }
        let record = try write(encoder, identity: identity, layout: layout)
        return TaskReport(
            "tokenizer: \(record.ranks) ranks, \(record.specialTokens.count) special token(s), id range \(record.idUpperBound)",
            reused: false)
    }

    /// The word-level vocabulary: the book's (sorted distinct pieces of the documents, from the
    /// count tasks) or a vectors file's keys in file order; then `<|endoftext|>`, `<|unk|>`.
    static func runWords(_ task: TaskSpec, words: TokenizerSettings.WordSettings, context: TaskContext) throws
        -> TaskReport
    {
        let configuration = context.configuration
        let layout = context.layout
        var hasher = IdentityHasher(.tokenizer)
        hasher.add("tokenizer", section: configuration.resolved["tokenizer"])
        var counts: [CountStage.Sidecar] = []
        var vectorsFile: String?
        if let vocabFrom = words.vocabFrom {
            let path = configuration.resolvePath(vocabFrom)
            vectorsFile = path
            do {
                hasher.add("file", try SHA256Hasher.hex(ofFile: path))
            } catch {
                throw PipelineError(
                    .config, "tokenizer.words.vocab_from: \(error) (in \(configuration.file))", path: path)
            }
        } else {
            counts = try task.needs.map { count in
                try Completion.upstream(
                    CountStage.Sidecar.self, layout.wordCountsSidecar(count.index ?? 0), from: count, for: task.id)
            }
            hasher.add("counts", counts.map(\.sha256))
        }
        let identity = hasher.finalize()
        if let record = intactRecord(layout: layout), record.identity == identity, record.isWords {
            return TaskReport("tokenizer: already done, \(record.ranks) words", reused: true)
        }
        let tokenizer: WordTokenizer
        if let vectorsFile {
            let vectors: WordVectors
            do {
                vectors = try WordVectors.load(
                    vectorsFile,
                    options: VectorLoadOptions(format: words.vocabFormat.flatMap(VectorFormat.init(rawValue:))))
            } catch {
                throw PipelineError(.config, "tokenizer.words.vocab_from: \(error)", path: vectorsFile)
            }
            tokenizer = WordTokenizer(tokens: vectors.keys.strings, lowercase: words.lowercase)
        } else {
            var pieces = Set<[UInt8]>()
            for count in counts {
                let path = layout.wordCounts(count.part)
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
                pieces.formUnion(try WordCounter(serialized: bytes, source: path).counts.keys)
            }
            tokenizer = WordTokenizer(sortedPieces: pieces, lowercase: words.lowercase)
        }
        guard let file = tokenizer.wordList else {
            let bad = (tokenizer.tokens.firstIndex { $0.utf8.contains(0x0A) } ?? 0) + 1
            throw PipelineError(
                .config,
                "tokenizer.words.vocab_from: key \(bad) contains a newline, which no piece can; remove it from the vectors file",
                path: vectorsFile)
        }
        let record = Record(
            sha256: wordsIdentity(file, lowercase: words.lowercase), tiktokenSHA256: SHA256Hasher.hex(file),
            specialTokens: [
                WordTokenizer.endOfText: tokenizer.endOfTextID, WordTokenizer.unknown: tokenizer.unknownID,
            ],
            ranks: tokenizer.count, idUpperBound: tokenizer.count, identity: identity, kind: "words",
            lowercase: words.lowercase)
        try AtomicFileWriter.write(file, to: layout.workWordVocabulary)
        try AtomicFileWriter.write(try StableJSON.encode(record), to: layout.workTokenizerRecord)
        return TaskReport(
            "tokenizer: \(tokenizer.count) words (\(vectorsFile == nil ? "the documents' distinct pieces" : "the keys of \(vectorsFile ?? "")") + <|endoftext|>, <|unk|>)",
            reused: false)
    }

    /// What tokens parts name as their word tokenizer: the vocabulary file and the lookup rule.
    static func wordsIdentity(_ file: [UInt8], lowercase: Bool) -> String {
        var hasher = SHA256Hasher()
        hasher.update(Array("words lowercase=\(lowercase)\n".utf8))
        hasher.update(file)
        return hasher.finalizeHex()
    }

    /// Merges the parts' counts and learns the vocabulary.
    static func train(
        counts: [CountStage.Sidecar], settings: TokenizerSettings.TrainSettings, specialTokens: [String: UInt32],
        names: [String], layout: OutputLayout
    ) throws -> BPEEncoder {
        var words = WordCounter()
        for count in counts {
            let path = layout.wordCounts(count.part)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            words.merge(try WordCounter(serialized: bytes, source: path))
        }
        let result = BPETrainer(
            vocabSize: settings.vocabSize, minFrequency: settings.minFrequency, specialTokens: names
        )
        .train(words)
        // Special ids follow the ranks actually learned (fewer than asked when pairs run out).
        var ids = result.specialTokenIDs(names: names)
        if ids != specialTokens {
            guard result.tokens.count == settings.vocabSize else {
                throw PipelineError(
                    .tokenizer,
                    "tokenizer.train: only \(result.tokens.count) of \(settings.vocabSize) tokens could be learned (no pair left with count ≥ max(1, min_frequency)); lower tokenizer.train.vocab_size to \(result.tokens.count) (and the special token ids to match)"
                )
            }
            ids = specialTokens
        }
        return try BPEEncoder(vocabulary: Vocabulary(tokensByRank: result.ranks, source: "trained"), specialTokens: ids)
    }

    /// The rank file and record of `encoder`.
    static func describe(_ encoder: BPEEncoder, identity: String) -> (tiktoken: [UInt8], record: Record) {
        let tiktoken = encoder.vocabulary.tiktokenFile()
        var hasher = SHA256Hasher()
        hasher.update(tiktoken)
        for (name, id) in encoder.specialTokens.sorted(by: { $0.key < $1.key }) {
            hasher.update(Array("\(name) \(id)\n".utf8))
        }
        return (
            tiktoken,
            Record(
                sha256: hasher.finalizeHex(), tiktokenSHA256: SHA256Hasher.hex(tiktoken),
                specialTokens: encoder.specialTokens, ranks: encoder.vocabulary.count,
                idUpperBound: encoder.idUpperBound, identity: identity)
        )
    }

    /// Writes the run's tokenizer for its workers (`OUT/_work/tokenizer.*`), the record last.
    static func write(_ encoder: BPEEncoder, identity: String, layout: OutputLayout) throws -> Record {
        let (tiktoken, record) = describe(encoder, identity: identity)
        try AtomicFileWriter.write(tiktoken, to: layout.workTokenizer)
        try AtomicFileWriter.write(try StableJSON.encode(record), to: layout.workTokenizerRecord)
        return record
    }

    /// The record of the run's tokenizer, if its rank file is intact.
    static func intactRecord(layout: OutputLayout) -> Record? {
        guard let record = try? StableJSON.decode(Record.self, from: layout.workTokenizerRecord),
            (try? SHA256Hasher.hex(ofFile: layout.workTokenizerFile(words: record.isWords))) == record.tiktokenSHA256
        else { return nil }
        return record
    }

    /// The record of the run's tokenizer, as the tokenizer task left it, for a task that `reader` runs.
    static func record(for reader: TaskID, layout: OutputLayout) throws -> Record {
        try Completion.upstream(Record.self, layout.workTokenizerRecord, from: .tokenizer, for: reader)
    }

    /// The run's tokenizer, checked against its record.
    static func tokenizer(_ record: Record, layout: OutputLayout) throws -> RunTokenizer {
        if record.isWords {
            let bytes = try Completion.readVerified(layout.workWordVocabulary, sha256: record.tiktokenSHA256)
            return .words(WordTokenizer(wordList: bytes, lowercase: record.lowercase ?? false))
        }
        return .bpe(try encoder(record, layout: layout))
    }

    /// The run's BPE tokenizer, checked against its record.
    static func encoder(_ record: Record, layout: OutputLayout) throws -> BPEEncoder {
        let bytes = try Completion.readVerified(layout.workTokenizer, sha256: record.tiktokenSHA256)
        let vocabulary = try Vocabulary(tiktokenData: bytes, source: layout.workTokenizer)
        return try BPEEncoder(vocabulary: vocabulary, specialTokens: record.specialTokens)
    }
}
