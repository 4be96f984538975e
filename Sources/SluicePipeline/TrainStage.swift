import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

/// `tokenizer.train`: a count task per docs part (its words and their counts, in parallel
/// across workers), then the tokenizer task merges the counts and learns the merges — so the
/// work that reads the corpus is spread out, and the merge loop's memory grows with the
/// distinct words, not with the corpus.
public enum TrainStage {
    public struct CountSidecar: Codable, Sendable {
        public var format = "sluice.wordcounts.v1"
        public var part: Int
        public var words: Int
        public var fileBytes: Int
        public var sha256: String
        /// SHA-256 of the docs part counted.
        public var sourceSHA256: String
        enum CodingKeys: String, CodingKey {
            case format, part, words
            case fileBytes = "file_bytes"
            case sha256
            case sourceSHA256 = "source_sha256"
        }
    }

    public static func count(part: Int, source: DocsPart.Sidecar, layout: OutputLayout) throws -> CountSidecar {
        let reader = try DocsPart.Reader(path: layout.docsPart(part))
        var counter = WordCounter()
        while let document = try reader.next() { counter.add(document: document) }
        let bytes = counter.serialized()
        try FileManager.default.createDirectory(atPath: layout.wordCountsDirectory, withIntermediateDirectories: true)
        try AtomicFileWriter.write(bytes, to: layout.wordCounts(part))
        let sidecar = CountSidecar(
            part: part, words: counter.counts.count, fileBytes: bytes.count, sha256: SHA256Hasher.hex(bytes),
            sourceSHA256: source.sha256)
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.wordCountsSidecar(part))
        return sidecar
    }

    public static func completedCount(part: Int, source: DocsPart.Sidecar, layout: OutputLayout) -> CountSidecar? {
        guard let sidecar = try? StableJSON.decode(CountSidecar.self, from: layout.wordCountsSidecar(part)),
            sidecar.sourceSHA256 == source.sha256,
            Completion.fileMatches(layout.wordCounts(part), bytes: sidecar.fileBytes, sha256: sidecar.sha256)
        else { return nil }
        return sidecar
    }

    /// What a trained vocabulary was made from: every part's counts and the settings.
    static func digest(counts: [CountSidecar], settings: TokenizerSettings.TrainSettings, specials: [String]) -> String
    {
        var hasher = SHA256Hasher()
        hasher.update(Array("vocab_size \(settings.vocabSize) min_frequency \(settings.minFrequency)\n".utf8))
        for name in specials { hasher.update(Array("special \(name)\n".utf8)) }
        for count in counts { hasher.update(Array((count.sha256 + "\n").utf8)) }
        return hasher.finalizeHex()
    }

    /// Merges the parts' counts and learns the vocabulary.
    static func train(
        counts: [CountSidecar], settings: TokenizerSettings.TrainSettings, specialTokens: [String: UInt32],
        layout: OutputLayout
    ) throws -> BPEEncoder {
        var words = WordCounter()
        for count in counts {
            let path = layout.wordCounts(count.part)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            words.merge(try WordCounter(serialized: bytes, source: path))
        }
        let names = settings.specialTokenOrder(specialTokens)
        let result = BPETrainer(
            vocabSize: settings.vocabSize, minFrequency: settings.minFrequency, specialTokens: names
        )
        .train(words)
        // Special ids follow the ranks actually learned (fewer than asked when pairs run out).
        var ids = result.specialTokenIDs(names: names)
        if ids != specialTokens {
            guard result.tokens.count == settings.vocabSize else {
                throw PipelineError(
                    "tokenizer.train: only \(result.tokens.count) of \(settings.vocabSize) tokens could be learned (no pair left with count ≥ max(1, min_frequency)); lower tokenizer.train.vocab_size to \(result.tokens.count) (and the special token ids to match)"
                )
            }
            ids = specialTokens
        }
        return try BPEEncoder(vocabulary: Vocabulary(tokensByRank: result.ranks, source: "trained"), specialTokens: ids)
    }
}
