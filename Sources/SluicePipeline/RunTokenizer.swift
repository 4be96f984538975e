import SluiceBPE
import SluiceWords

/// The run's tokenizer as the tokenize stage and `sluice inspect` use it: byte-level BPE
/// (tiktoken's ids) or the book's word-level tokenizer. One place decides which.
public enum RunTokenizer: Sendable {
    case bpe(BPEEncoder)
    case words(WordTokenizer)

    /// Ids are below this.
    public var idUpperBound: Int {
        switch self {
        case .bpe(let encoder): encoder.idUpperBound
        case .words(let tokenizer): tokenizer.count
        }
    }

    /// Appends the ids of one document; `unknown` sees each piece a word vocabulary lacks.
    /// `cache` (BPE only) is the calling thread's, kept across documents; ids never depend on it.
    public func encode(
        document: [UInt8], into ids: inout [TokenID], cache: PieceCache? = nil, unknown: (ArraySlice<UInt8>) -> Void
    ) {
        switch self {
        case .bpe(let encoder): encoder.encodeOrdinary(utf8: document, into: &ids, cache: cache)
        case .words(let tokenizer): tokenizer.encode(utf8: document, into: &ids, unknown: unknown)
        }
    }

    /// Where text continuing past `bytes` can be cut without changing any id before the cut
    /// (0: nowhere yet). BPE: the pre-tokenizer's `safeCut`. Words: after the last ASCII
    /// whitespace byte, a separator of the book's split that belongs to no piece.
    public func safeCut(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        switch self {
        case .bpe: unsafe PreTokenizer.safeCut(bytes)
        case .words: unsafe Self.wordSafeCut(bytes)
        }
    }

    /// The words tokenizer's cut: after the last ASCII whitespace byte, or 0.
    public static func wordSafeCut(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var index = bytes.count
        while index > 0 {
            switch unsafe bytes[index - 1] {
            case 0x09...0x0D, 0x20: return index
            default: index -= 1
            }
        }
        return 0
    }

    /// Text of `ids` (BPE: the bytes; words: the book's decode).
    public func decode(_ ids: [TokenID]) -> [UInt8] {
        switch self {
        case .bpe(let encoder): (try? encoder.decode(ids)) ?? []
        case .words(let tokenizer): Array(((try? tokenizer.decode(ids)) ?? "").utf8)
        }
    }
}
