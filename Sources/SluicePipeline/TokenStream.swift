import SluiceIO

/// The run's global token stream: the tokens parts in order, the very last separator dropped,
/// with each document's span — what windows are cut from (DESIGN.md, Windows and batches).
///
/// Held in memory as UInt32 (4 bytes per token): windows may be shuffled across the whole
/// stream, so random access is needed. (Bounded-memory streaming is a scheduler concern.)
public struct TokenStream: Sendable {
    public var ids: [UInt32]
    /// Start and length (separator excluded) of each document in `ids`.
    public var documents: [(start: Int, length: Int)]

    public init(ids: [UInt32], documents: [(start: Int, length: Int)]) {
        self.ids = ids
        self.documents = documents
    }

    public static func load(layout: OutputLayout, parts: [TokenizeStage.Sidecar]) throws -> TokenStream {
        var ids: [UInt32] = []
        ids.reserveCapacity(parts.reduce(0) { $0 + $1.tokens })
        var documents: [(start: Int, length: Int)] = []
        for part in parts {
            let bytes = try LZ4FrameReader(path: layout.tokensPart(part.part)).readAll()
            if part.idBytes == 2 {
                for index in stride(from: 0, to: bytes.count - 1, by: 2) {
                    ids.append(UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8)
                }
            } else {
                for index in stride(from: 0, to: bytes.count - 3, by: 4) {
                    ids.append(
                        UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16 | UInt32(
                            bytes[index + 3]) << 24)
                }
            }
            let lengths = try LZ4FrameReader(path: layout.tokensDocumentLengths(part.part)).readAll()
            var position = ids.count - part.tokens
            for index in stride(from: 0, to: lengths.count - 3, by: 4) {
                let length =
                    Int(lengths[index]) | Int(lengths[index + 1]) << 8 | Int(lengths[index + 2]) << 16 | Int(
                        lengths[index + 3]) << 24
                documents.append((position, length))
                position += length + (part.separatorID == nil ? 0 : 1)
            }
            guard position == ids.count else {
                throw PipelineError(
                    "\(layout.tokensPart(part.part)): document token counts do not add up to the part's \(part.tokens) tokens; delete the part and its .json and re-run"
                )
            }
        }
        if ids.count > length(of: parts) { ids.removeLast() }
        return TokenStream(ids: ids, documents: documents)
    }

    /// Length of the stream the parts make: their tokens, less the separator after the very
    /// last document (separators go between documents).
    public static func length(of parts: [TokenizeStage.Sidecar]) -> Int {
        let total = parts.reduce(0) { $0 + $1.tokens }
        let documents = parts.reduce(0) { $0 + $1.documents }
        return parts.contains { $0.separatorID != nil } && documents > 0 ? total - 1 : total
    }
}
