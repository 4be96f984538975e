/// The book's word-level tokenizer (*Build a Large Language Model (From Scratch)*, ch. 2,
/// `SimpleTokenizerV2`), exactly:
///
/// - split: `re.split(r'([,.:;?_!"()\']|--|\s)', text)`, keep `item.strip()` where non-empty
///   (`\s` and `strip()` are Python's Unicode whitespace, `str.isspace`);
/// - vocabulary: `sorted(set(pieces))` + `<|endoftext|>`, `<|unk|>`, ids by position;
/// - encode: a piece not in the vocabulary is `<|unk|>`;
/// - decode: `" ".join(pieces)`, then `re.sub(r'\s+([,.:;?!"()\'])', r'\1', text)`.
///
/// Pieces never contain whitespace, so a vocabulary is a list of whitespace-free strings.
public struct WordTokenizer: Sendable {
    public static let endOfText = "<|endoftext|>"
    public static let unknown = "<|unk|>"

    /// Tokens in id order.
    public let tokens: [String]
    private let ids: [String: UInt32]
    /// Look pieces up lower-cased (for lower-case vocabularies such as GloVe's).
    public let lowercase: Bool
    public let unknownID: UInt32
    public let endOfTextID: UInt32

    /// A vocabulary in id order; `<|endoftext|>` and `<|unk|>` are appended when missing.
    /// Later repeats of a token are dropped (the first id wins).
    public init(tokens: [String], lowercase: Bool = false) {
        var ordered: [String] = []
        var ids: [String: UInt32] = [:]
        ordered.reserveCapacity(tokens.count + 2)
        for token in tokens + [Self.endOfText, Self.unknown] where ids[token] == nil {
            ids[token] = UInt32(ordered.count)
            ordered.append(token)
        }
        self.tokens = ordered
        self.ids = ids
        self.lowercase = lowercase
        // Both were appended above when missing.
        unknownID = ids[Self.unknown] ?? 0
        endOfTextID = ids[Self.endOfText] ?? 0
    }

    /// The book's vocabulary of a text: its sorted distinct pieces, then the two specials.
    public static func buildingVocabulary(from texts: [[UInt8]], lowercase: Bool = false) -> WordTokenizer {
        var pieces = Set<[UInt8]>()
        for text in texts { forEachPiece(text) { pieces.insert(lowercase ? lowercased($0) : Array($0)) } }
        return WordTokenizer(sortedPieces: pieces, lowercase: lowercase)
    }

    /// Distinct pieces, sorted as Python sorts str (code points = UTF-8 byte order).
    public init(sortedPieces pieces: some Collection<[UInt8]>, lowercase: Bool = false) {
        let sorted = pieces.sorted { $0.lexicographicallyPrecedes($1) }
        self.init(tokens: sorted.map { String(decoding: $0, as: UTF8.self) }, lowercase: lowercase)
    }

    public var count: Int { tokens.count }

    /// A word list: one token per line in id order (what a run writes as `tokenizer.words.txt`).
    public init(wordList bytes: [UInt8], lowercase: Bool = false) {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        self.init(tokens: lines.map { String(decoding: $0, as: UTF8.self) }, lowercase: lowercase)
    }

    /// The vocabulary as a word list; nil when a token holds a newline, which the format cannot
    /// (no piece of text can: only a vectors file's key).
    public var wordList: [UInt8]? {
        var bytes: [UInt8] = []
        for token in tokens {
            guard !token.utf8.contains(0x0A) else { return nil }
            bytes += token.utf8
            bytes.append(0x0A)
        }
        return bytes
    }

    public func id(of token: String) -> UInt32? { ids[token] }

    // MARK: - Splitting

    /// Calls `body` with each piece of `text` (valid UTF-8), in order.
    public static func forEachPiece(_ text: [UInt8], _ body: (ArraySlice<UInt8>) -> Void) {
        let count = text.count
        var pieceStart = 0
        var index = 0
        @inline(__always) func flush(_ end: Int) {
            if end > pieceStart { body(text[pieceStart..<end]) }
        }
        while index < count {
            let byte = text[index]
            if byte < 0x80 {
                if isPunctuation(byte) {
                    flush(index)
                    body(text[index..<index + 1])
                    index += 1
                    pieceStart = index
                } else if byte == 0x2D, index + 1 < count, text[index + 1] == 0x2D {
                    flush(index)
                    body(text[index..<index + 2])
                    index += 2
                    pieceStart = index
                } else if byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) || (byte >= 0x1C && byte <= 0x1F) {
                    flush(index)
                    index += 1
                    pieceStart = index
                } else {
                    index += 1
                }
                continue
            }
            let width = unicodeSpaceWidth(text, at: index)
            if width > 0 {
                flush(index)
                index += width
                pieceStart = index
            } else {
                index += 1
            }
        }
        flush(count)
    }

    /// `,.:;?_!"()'` — the split's character class.
    @inline(__always)
    static func isPunctuation(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x2C, 0x2E, 0x3A, 0x3B, 0x3F, 0x5F, 0x21, 0x22, 0x28, 0x29, 0x27: true
        default: false
        }
    }

    /// The UTF-8 length of a non-ASCII character Python counts as whitespace at `index`, or 0:
    /// U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
    @inline(__always)
    static func unicodeSpaceWidth(_ text: [UInt8], at index: Int) -> Int {
        let lead = text[index]
        let remaining = text.count - index
        switch lead {
        case 0xC2 where remaining >= 2:
            return text[index + 1] == 0x85 || text[index + 1] == 0xA0 ? 2 : 0
        case 0xE1 where remaining >= 3:
            return text[index + 1] == 0x9A && text[index + 2] == 0x80 ? 3 : 0
        case 0xE2 where remaining >= 3:
            let (second, third) = (text[index + 1], text[index + 2])
            if second == 0x80 && (third <= 0x8A || third == 0xA8 || third == 0xA9 || third == 0xAF) && third >= 0x80 {
                return 3
            }
            return second == 0x81 && third == 0x9F ? 3 : 0
        case 0xE3 where remaining >= 3:
            return text[index + 1] == 0x80 && text[index + 2] == 0x80 ? 3 : 0
        default:
            return 0
        }
    }

    /// Python's `str.lower()` of a piece (full Unicode lower-case mapping).
    static func lowercased(_ piece: ArraySlice<UInt8>) -> [UInt8] {
        if piece.allSatisfy({ $0 < 0x80 }) {
            return piece.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        }
        return Array(String(decoding: piece, as: UTF8.self).lowercased().utf8)
    }

    /// Calls `body` with each piece as it is looked up: lower-cased with `lowercase`.
    public static func forEachLookupPiece(_ text: [UInt8], lowercase: Bool, _ body: ([UInt8]) -> Void) {
        forEachPiece(text) { body(lowercase ? lowercased($0) : Array($0)) }
    }

    /// A token as pieces are looked up (lower-cased with `lowercase`): how a vectors file's
    /// key for it is found.
    public func lookupForm(_ token: String) -> String {
        lowercase ? String(decoding: Self.lowercased(Array(token.utf8)[...]), as: UTF8.self) : token
    }

    /// The pieces of `text`, as strings (what the book's `preprocessed` list holds).
    public static func pieces(_ text: [UInt8]) -> [String] {
        var result: [String] = []
        forEachPiece(text) { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    // MARK: - Encoding

    /// Appends the ids of `text` (valid UTF-8); `unknown` is called with each piece that became
    /// `<|unk|>` (as looked up, lower-cased when `lowercase`).
    public func encode(utf8 text: [UInt8], into ids: inout [UInt32], unknown: (ArraySlice<UInt8>) -> Void = { _ in }) {
        Self.forEachPiece(text) { piece in
            let key = lowercase ? Self.lowercased(piece)[...] : piece
            if let id = self.ids[String(decoding: key, as: UTF8.self)] {
                ids.append(id)
            } else {
                ids.append(unknownID)
                unknown(key)
            }
        }
    }

    public func encode(_ text: String) -> [UInt32] {
        var ids: [UInt32] = []
        encode(utf8: Array(text.utf8), into: &ids)
        return ids
    }

    /// The book's decode: pieces joined by spaces, then whitespace before punctuation removed.
    /// - Throws: `WordTokenizerError` for an id outside the vocabulary.
    public func decode(_ ids: [UInt32]) throws(WordTokenizerError) -> String {
        var joined: [Unicode.Scalar] = []
        for (position, id) in ids.enumerated() {
            guard Int(id) < tokens.count else { throw WordTokenizerError(id: id, position: position, size: count) }
            if position > 0 { joined.append(" ") }
            joined.append(contentsOf: tokens[Int(id)].unicodeScalars)
        }
        // re.sub(r'\s+([,.:;?!"()\'])', r'\1'): drop each whitespace run that precedes one of these.
        var output = String.UnicodeScalarView()
        var index = 0
        while index < joined.count {
            if Self.isSpace(joined[index]) {
                var end = index
                while end < joined.count && Self.isSpace(joined[end]) { end += 1 }
                if end < joined.count, ",.:;?!\"()'".unicodeScalars.contains(joined[end]) {
                    index = end
                    continue
                }
                output.append(contentsOf: joined[index..<end])
                index = end
                continue
            }
            output.append(joined[index])
            index += 1
        }
        return String(output)
    }

    /// Python's `str.isspace()` (what `\s` matches in a str pattern).
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            true
        default: false
        }
    }
}

/// An id the vocabulary does not have.
public struct WordTokenizerError: Error, Sendable, CustomStringConvertible {
    public var id: UInt32
    public var position: Int
    public var size: Int
    public var description: String {
        "id \(id) at position \(position) is not in the word vocabulary (\(size) tokens: ids 0–\(size - 1))"
    }
}
