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
public enum TokenizeStage: StageRunner {
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
        /// Digest of the docs part, the tokenizer and the document separator: what the part is made from.
        public var identity: String
        /// Word-level runs: pieces the vocabulary lacks, made `<|unk|>` — how many, and which
        /// (distinct, sorted), so that the report can give the out-of-vocabulary rate.
        public var unknownTokens: Int?
        public var unknownPieces: [String]?

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
            case identity
            case unknownTokens = "unknown_tokens"
            case unknownPieces = "unknown_pieces"
        }
    }

    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let part = task.id.index ?? 0
        let layout = context.layout
        let name = OutputLayout.partName(part)
        let source = try IngestStage.source(part: part, for: task.id, layout: layout)
        let tokenizer = try TokenizerStage.record(for: task.id, layout: layout)
        let separatorName = context.configuration.tokenizer?.documentSeparator
        let separator = separatorName.flatMap { tokenizer.specialTokens[$0] }
        var hasher = IdentityHasher(.tokenize)
        hasher.add("source", source.sha256)
        hasher.add("tokenizer", tokenizer.sha256)
        hasher.add("separator", separator.map { "\(separatorName ?? "") \($0)" } ?? "none")
        let identity = hasher.finalize()
        if let done = completed(part: part, identity: identity, layout: layout) {
            return TaskReport(
                "tokenize \(name): already done, \(done.tokens) tokens", reused: true,
                counters: ["bytes": source.documentBytes, "tokens": done.tokens])
        }
        let sidecar = try run(
            part: part, source: source, tokenizer: try TokenizerStage.tokenizer(tokenizer, layout: layout),
            tokenizerSHA256: tokenizer.sha256, separator: separator,
            identity: identity, layout: layout
        ) { bytes, tokens in
            context.events.progress(["bytes": bytes, "tokens": tokens])
        }
        return TaskReport(
            "tokenize \(name): \(sidecar.tokens) tokens", reused: false,
            counters: ["bytes": source.documentBytes, "tokens": sidecar.tokens])
    }

    public static func run(
        part: Int, source: DocsPart.Sidecar, tokenizer: RunTokenizer, tokenizerSHA256: String, separator: TokenID?,
        identity: String, layout: OutputLayout, progress: (_ bytes: Int, _ tokens: Int) -> Void = { _, _ in }
    ) throws -> Sidecar {
        var textBytes = 0
        let idBytes = tokenizer.idUpperBound <= 1 << 16 ? 2 : 4
        let reader = try DocsPart.Reader(path: layout.docsPart(part))
        let tokens = try LZ4FrameWriter(path: layout.tokensPart(part))
        let lengths = try LZ4FrameWriter(path: layout.tokensDocumentLengths(part))
        var ids: [TokenID] = []
        var bytes: [UInt8] = []
        var documents = 0
        var tokenCount = 0
        var unknownTokens = 0
        // Copies, not slices: a slice would keep its whole document alive.
        var unknownPieces = Set<[UInt8]>()
        // One part is megabytes of text: its repeated pieces make the cache pay (4 MiB, bounded;
        // BPE only: the word tokenizer has no merges to remember).
        let cache: PieceCache? = if case .bpe = tokenizer { PieceCache() } else { nil }
        func write(_ ids: [TokenID]) throws {
            Self.pack(ids, idBytes: idBytes, into: &bytes)
            try tokens.write(bytes)
        }
        // A huge document arrives in chunks cut where no token can cross: bounded memory.
        var documentTokens = 0
        try reader.forEachDocumentChunk(safeCut: tokenizer.safeCut) { text, documentEnds in
            ids.removeAll(keepingCapacity: true)
            tokenizer.encode(document: text, into: &ids, cache: cache) { piece in
                unknownTokens += 1
                unknownPieces.insert(Array(piece))
            }
            documentTokens += ids.count
            textBytes += text.count
            if documentEnds {
                var count = UInt32(documentTokens).littleEndian
                try withUnsafeBytes(of: &count) { try lengths.write($0) }
                if let separator { ids.append(separator) }
                documents += 1
                tokenCount += documentTokens + (separator == nil ? 0 : 1)
                documentTokens = 0
            }
            try write(ids)
            progress(textBytes, tokenCount + documentTokens)
        }
        guard documents == source.documents else {
            throw PipelineError(
                .damagedOutput,
                "\(layout.docsPart(part)): holds \(documents) documents but its sidecar says \(source.documents); delete it and its .json and run again",
                path: layout.docsPart(part))
        }
        let (sha256, fileBytes) = try tokens.finish()
        let (lengthsSHA, lengthsBytes) = try lengths.finish()
        var sidecar = Sidecar(
            part: part, documents: documents, tokens: tokenCount, idBytes: idBytes, separatorID: separator,
            fileBytes: fileBytes, sha256: sha256, documentTokensFileBytes: lengthsBytes,
            documentTokensSHA256: lengthsSHA,
            sourceSHA256: source.sha256, tokenizerSHA256: tokenizerSHA256, identity: identity)
        if case .words = tokenizer {
            sidecar.unknownTokens = unknownTokens
            sidecar.unknownPieces = unknownPieces.sorted { $0.lexicographicallyPrecedes($1) }.map {
                String(decoding: $0, as: UTF8.self)
            }
        }
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.tokensSidecar(part))
        return sidecar
    }

    /// The sidecar of a finished task with this identity, if its outputs still match it.
    static func completed(part: Int, identity: String, layout: OutputLayout) -> Sidecar? {
        guard let sidecar = try? StableJSON.decode(Sidecar.self, from: layout.tokensSidecar(part)),
            sidecar.identity == identity,
            Completion.fileMatches(layout.tokensPart(part), bytes: sidecar.fileBytes, sha256: sidecar.sha256),
            Completion.fileMatches(
                layout.tokensDocumentLengths(part), bytes: sidecar.documentTokensFileBytes,
                sha256: sidecar.documentTokensSHA256)
        else { return nil }
        return sidecar
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
