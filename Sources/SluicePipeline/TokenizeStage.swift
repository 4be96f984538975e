import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

/// The tokenize stage: one task turns one docs part into one tokens part.
///
/// A tokens part is an LZ4 frame of little-endian ids — UInt16 when every id the tokenizer
/// can produce fits, else UInt32 — holding each document's ids followed by the separator id
/// (when configured). The global token stream is the parts in order with the very last
/// separator dropped, so separators sit exactly *between* documents. A second frame holds
/// each document's token count (UInt32, separator not counted): document boundaries are
/// recorded, never inferred from the separator id.
public enum TokenizeStage {
    public static let formatName = "sluice.tokens.v1"

    public struct Sidecar: Codable, Sendable, Equatable {
        public var format = TokenizeStage.formatName
        public var part: Int
        public var documents: Int
        /// Ids in the part, separators included.
        public var tokens: Int
        /// 2 (UInt16) or 4 (UInt32), little-endian.
        public var idBytes: Int
        public var separatorID: UInt32?
        public var fileBytes: Int
        public var sha256: String
        public var documentTokensFileBytes: Int
        public var documentTokensSHA256: String
        /// SHA-256 of the docs part this was made from.
        public var sourceSHA256: String
        /// Identity of the tokenizer (ranks and special tokens) that made it.
        public var tokenizerSHA256: String

        enum CodingKeys: String, CodingKey {
            case format, part, documents, tokens
            case idBytes = "id_bytes"
            case separatorID = "separator_id"
            case fileBytes = "file_bytes"
            case sha256
            case documentTokensFileBytes = "document_tokens_file_bytes"
            case documentTokensSHA256 = "document_tokens_sha256"
            case sourceSHA256 = "source_sha256"
            case tokenizerSHA256 = "tokenizer_sha256"
        }
    }

    public static func run(
        part: Int, source: DocsPart.Sidecar, encoder: BPEEncoder, tokenizerSHA256: String, separator: TokenID?,
        layout: OutputLayout, progress: (_ bytes: Int, _ tokens: Int) -> Void = { _, _ in }
    ) throws -> Sidecar {
        var textBytes = 0
        let idBytes = encoder.idUpperBound <= 1 << 16 ? 2 : 4
        let reader = try DocsPart.Reader(path: layout.docsPart(part))
        let tokens = try LZ4FrameWriter(path: layout.tokensPart(part))
        let lengths = try LZ4FrameWriter(path: layout.tokensDocumentLengths(part))
        var ids: [TokenID] = []
        var bytes: [UInt8] = []
        var documents = 0
        var tokenCount = 0
        while let document = try reader.next() {
            ids.removeAll(keepingCapacity: true)
            encoder.encodeOrdinary(utf8: document, into: &ids)
            var documentTokens = UInt32(ids.count).littleEndian
            try withUnsafeBytes(of: &documentTokens) { try lengths.write($0) }
            if let separator { ids.append(separator) }
            Self.pack(ids, idBytes: idBytes, into: &bytes)
            try tokens.write(bytes)
            documents += 1
            tokenCount += ids.count
            textBytes += document.count
            progress(textBytes, tokenCount)
        }
        guard documents == source.documents else {
            throw PipelineError(
                "\(layout.docsPart(part)): holds \(documents) documents but its sidecar says \(source.documents); re-run ingest for this part (delete it and its .json)"
            )
        }
        let (sha256, fileBytes) = try tokens.finish()
        let (lengthsSHA, lengthsBytes) = try lengths.finish()
        let sidecar = Sidecar(
            part: part, documents: documents, tokens: tokenCount, idBytes: idBytes, separatorID: separator,
            fileBytes: fileBytes, sha256: sha256, documentTokensFileBytes: lengthsBytes,
            documentTokensSHA256: lengthsSHA,
            sourceSHA256: source.sha256, tokenizerSHA256: tokenizerSHA256)
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.tokensSidecar(part))
        return sidecar
    }

    /// The sidecar of a finished task, if its outputs still match it and its source is unchanged.
    public static func completed(part: Int, source: DocsPart.Sidecar, tokenizerSHA256: String, layout: OutputLayout)
        -> Sidecar?
    {
        guard let sidecar = try? StableJSON.decode(Sidecar.self, from: layout.tokensSidecar(part)),
            sidecar.sourceSHA256 == source.sha256, sidecar.tokenizerSHA256 == tokenizerSHA256,
            Completion.fileMatches(layout.tokensPart(part), bytes: sidecar.fileBytes, sha256: sidecar.sha256),
            Completion.fileMatches(
                layout.tokensDocumentLengths(part), bytes: sidecar.documentTokensFileBytes,
                sha256: sidecar.documentTokensSHA256)
        else { return nil }
        return sidecar
    }

    /// The run's tokenizer, written once by the coordinator for every tokenize task: loading a
    /// tiktoken rank file takes a third of the time of GPT-2's encoder.json + vocab.bpe.
    public struct TokenizerRecord: Codable, Sendable {
        var format = "sluice.tokenizer.v1"
        /// SHA-256 of the rank file's bytes, then each special token as "name id\n" in name order.
        var sha256: String
        var tiktokenSHA256: String
        var specialTokens: [String: UInt32]
        var ranks: Int
        var idUpperBound: Int
        /// For a trained vocabulary: the digest of the word counts and settings it was learned from.
        var trainedFrom: String?
        enum CodingKeys: String, CodingKey {
            case format, sha256
            case tiktokenSHA256 = "tiktoken_sha256"
            case specialTokens = "special_tokens"
            case ranks
            case idUpperBound = "id_upper_bound"
            case trainedFrom = "trained_from"
        }
    }

    /// The rank file and identity of `encoder`.
    static func identity(of encoder: BPEEncoder) -> (tiktoken: [UInt8], record: TokenizerRecord) {
        let tiktoken = encoder.vocabulary.tiktokenFile()
        var hasher = SHA256Hasher()
        hasher.update(tiktoken)
        for (name, id) in encoder.specialTokens.sorted(by: { $0.key < $1.key }) {
            hasher.update(Array("\(name) \(id)\n".utf8))
        }
        return (
            tiktoken,
            TokenizerRecord(
                sha256: hasher.finalizeHex(), tiktokenSHA256: SHA256Hasher.hex(tiktoken),
                specialTokens: encoder.specialTokens, ranks: encoder.vocabulary.count,
                idUpperBound: encoder.idUpperBound)
        )
    }

    /// Writes the run's tokenizer for its workers (`OUT/_work/tokenizer.*`).
    static func recordTokenizer(_ encoder: BPEEncoder, layout: OutputLayout, trainedFrom: String? = nil) throws
        -> TokenizerRecord
    {
        var (tiktoken, record) = identity(of: encoder)
        record.trainedFrom = trainedFrom
        try AtomicFileWriter.write(tiktoken, to: layout.workTokenizer)
        try AtomicFileWriter.write(try StableJSON.encode(record), to: layout.workTokenizerRecord)
        return record
    }

    /// The tokenizer the run recorded, if its files are intact.
    /// The record of the run's tokenizer, if its rank file is intact.
    static func intactTokenizerRecord(layout: OutputLayout) -> TokenizerRecord? {
        guard let record = try? StableJSON.decode(TokenizerRecord.self, from: layout.workTokenizerRecord),
            (try? SHA256Hasher.hex(ofFile: layout.workTokenizer)) == record.tiktokenSHA256
        else { return nil }
        return record
    }

    static func recordedTokenizer(layout: OutputLayout) -> (encoder: BPEEncoder, sha256: String)? {
        guard let record = try? StableJSON.decode(TokenizerRecord.self, from: layout.workTokenizerRecord),
            (try? SHA256Hasher.hex(ofFile: layout.workTokenizer)) == record.tiktokenSHA256,
            let vocabulary = try? Vocabulary.load(tiktokenFile: layout.workTokenizer),
            let encoder = try? BPEEncoder(vocabulary: vocabulary, specialTokens: record.specialTokens)
        else { return nil }
        return (encoder, record.sha256)
    }

    /// Little-endian ids, 2 or 4 bytes each, into a reused buffer.
    static func pack(_ ids: [TokenID], idBytes: Int, into bytes: inout [UInt8]) {
        bytes.removeAll(keepingCapacity: true)
        bytes.reserveCapacity(ids.count * idBytes)
        if idBytes == 2 {
            for id in ids {
                bytes.append(UInt8(truncatingIfNeeded: id))
                bytes.append(UInt8(truncatingIfNeeded: id >> 8))
            }
        } else {
            for id in ids {
                bytes.append(UInt8(truncatingIfNeeded: id))
                bytes.append(UInt8(truncatingIfNeeded: id >> 8))
                bytes.append(UInt8(truncatingIfNeeded: id >> 16))
                bytes.append(UInt8(truncatingIfNeeded: id >> 24))
            }
        }
    }
}
