import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluiceWords

/// `tokenizer.train`, first half: a count task per docs part (its pre-tokenizer words and their
/// counts, in parallel across workers); the tokenizer task then merges the counts and learns the
/// merges — so the work that reads the corpus is spread out, and the merge loop's memory grows
/// with the distinct words, not with the corpus.
public enum CountStage: StageRunner {
    public struct Sidecar: Codable, Sendable {
        public var format = "sluice.wordcounts.v1"
        public var part: Int
        public var words: Int
        public var fileBytes: Int
        public var sha256: String
        /// SHA-256 of the docs part counted: the count's identity.
        public var sourceSHA256: String
        enum CodingKeys: String, CodingKey {
            case format, part, words
            case fileBytes = "file_bytes"
            case sha256
            case sourceSHA256 = "source_sha256"
        }
    }

    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let part = task.id.index ?? 0
        let layout = context.layout
        let source = try IngestStage.source(part: part, for: task.id, layout: layout)
        let name = OutputLayout.partName(part)
        if let sidecar = try? StableJSON.decode(Sidecar.self, from: layout.wordCountsSidecar(part)),
            sidecar.sourceSHA256 == source.sha256,
            Completion.fileMatches(layout.wordCounts(part), bytes: sidecar.fileBytes, sha256: sidecar.sha256)
        {
            return TaskReport(
                "count \(name): already done, \(sidecar.words) distinct words", reused: true,
                counters: ["bytes": source.documentBytes])
        }
        let reader = try DocsPart.Reader(path: layout.docsPart(part))
        var counter = WordCounter()
        if let words = context.configuration.tokenizer?.words {
            // The book's pieces, as the word vocabulary is built from them.
            try reader.forEachDocumentChunk(safeCut: { unsafe RunTokenizer.wordSafeCut($0) }) { text, _ in
                WordTokenizer.forEachLookupPiece(text, lowercase: words.lowercase) {
                    counter.add(word: $0, count: 1)
                }
            }
        } else {
            try reader.forEachDocumentChunk(safeCut: { unsafe PreTokenizer.safeCut($0) }) { text, _ in
                counter.add(document: text)
            }
        }
        let bytes = counter.serialized()
        try FileManager.default.createDirectory(atPath: layout.wordCountsDirectory, withIntermediateDirectories: true)
        try AtomicFileWriter.write(bytes, to: layout.wordCounts(part))
        let sidecar = Sidecar(
            part: part, words: counter.counts.count, fileBytes: bytes.count, sha256: SHA256Hasher.hex(bytes),
            sourceSHA256: source.sha256)
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.wordCountsSidecar(part))
        return TaskReport(
            "count \(name): \(sidecar.words) distinct words", reused: false, counters: ["bytes": source.documentBytes])
    }
}
