// Performance notes:
// - No regex: GPT-2's pattern is decided by one scalar class per position, so the splitter is
//   a hand-written scanner over UTF-8 bytes. ASCII bytes are classified by a 256-entry table;
//   only bytes >= 0x80 decode a scalar and read the generated Unicode 16 table.
// - Invalid UTF-8 never traps: a byte that does not start a well-formed sequence is one
//   "other" unit of one byte, so every byte lands in exactly one piece and decode round-trips.

/// Splits UTF-8 text into GPT-2 pre-tokenizer pieces exactly as tiktoken 0.14 applies
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
/// with Unicode 16.0 property tables (see shared/specs/gpt2-pretokenizer.md, §1).
public enum PreTokenizer {
    /// Byte → class for ASCII; `multiByte` for bytes >= 0x80, which need decoding.
    @usableFromInline
    static let asciiClasses: [UInt8] = {
        var table = [UInt8](repeating: multiByte, count: 256)
        for byte in 0..<128 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A: table[byte] = ScalarClass.letter.rawValue
            case 0x30...0x39: table[byte] = ScalarClass.number.rawValue
            case 0x09...0x0D, 0x20: table[byte] = ScalarClass.whitespace.rawValue
            default: table[byte] = ScalarClass.other.rawValue
            }
        }
        return table
    }()

    @usableFromInline static let multiByte: UInt8 = 4

    /// Where a text that continues past `bytes` can be cut so that the two sides, each
    /// tokenized alone, give exactly the pieces of the whole text: the end of the last piece
    /// that ends at least 8 bytes before the end of `bytes` and is not the second of two
    /// whitespace pieces in a row; 0 when there is none.
    ///
    /// Why this is enough. (1) The cut is a piece boundary of the whole text: each alternative
    /// of the pattern decides where its match ends by looking at most at the scalar after the
    /// match and, for `\s+(?!\S)`, the one after that (two scalars, at most 8 bytes), so a piece
    /// ending 8 bytes or more before the end was decided by bytes that are all present, and so
    /// was every piece before it (pieces are matched left to right, with no look-behind).
    /// (2) The left side alone ends where the right side's first scalar used to be; that
    /// changes a match only for a whitespace run reaching the cut and followed by
    /// non-whitespace in the whole text, which the whole splits into two whitespace pieces
    /// (the run less its last scalar, then that scalar) and the left side alone keeps as one
    /// (`\s+` at the end of text). That is exactly the excluded case; any other piece ending
    /// at the cut ends there alone too. (3) The right side starts at a piece start, and no
    /// alternative looks behind. Tests cut thousands of random texts and compare ids.
    public static func safeCut(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let limit = bytes.count - 8
        var start = 0
        var cut = 0
        var previousWasWhitespace = false
        while start < bytes.count {
            let end = unsafe pieceEnd(bytes, from: start)
            if end > limit { break }
            let isWhitespace = unsafe isWhitespacePiece(bytes, start, end)
            if !(isWhitespace && previousWasWhitespace) { cut = end }
            previousWasWhitespace = isWhitespace
            start = end
        }
        return cut
    }

    /// Whether the piece `start..<end` is whitespace (rule 4 of `pieceEnd`), not a space
    /// attached to the run after it (rule 2).
    static func isWhitespacePiece(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        let first = unsafe classify(bytes, start)
        guard first.cls == ScalarClass.whitespace.rawValue else { return false }
        let next = start + first.length
        if next >= end { return true }
        return unsafe classify(bytes, next).cls == ScalarClass.whitespace.rawValue
    }

    /// The pieces of `text`, as byte ranges; for tests and tools, not the hot path.
    public static func pieces(_ text: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        unsafe text.withUnsafeBufferPointer { bytes in
            var start = 0
            while start < bytes.count {
                let end = unsafe pieceEnd(bytes, from: start)
                result.append(start..<end)
                start = end
            }
        }
        return result
    }

    /// Class and byte length of the unit starting at `index` (`index < bytes.count`).
    @inline(__always)
    @usableFromInline
    static func classify(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int) -> (cls: UInt8, length: Int) {
        let lead = unsafe bytes[index]
        let ascii = asciiClasses[Int(lead)]
        if ascii != multiByte { return (ascii, 1) }
        return unsafe classifyMultiByte(bytes, index, lead)
    }

    @usableFromInline
    static func classifyMultiByte(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int, _ lead: UInt8)
        -> (cls: UInt8, length: Int)
    {
        let remaining = bytes.count - index
        var value: UInt32
        var length: Int
        var minimum: UInt32
        switch lead {
        case 0xC2...0xDF: (value, length, minimum) = (UInt32(lead & 0x1F), 2, 0x80)
        case 0xE0...0xEF: (value, length, minimum) = (UInt32(lead & 0x0F), 3, 0x800)
        case 0xF0...0xF4: (value, length, minimum) = (UInt32(lead & 0x07), 4, 0x10000)
        default: return (ScalarClass.other.rawValue, 1)
        }
        guard remaining >= length else { return (ScalarClass.other.rawValue, 1) }
        for offset in 1..<length {
            let byte = unsafe bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { return (ScalarClass.other.rawValue, 1) }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard value >= minimum, value <= 0x10FFFF, !(0xD800...0xDFFF).contains(value) else {
            return (ScalarClass.other.rawValue, 1)
        }
        return (UnicodeClassTable.classes[Int(value)], length)
    }

    /// End (exclusive) of the piece that starts at `start` (`start < bytes.count`).
    @inline(__always)
    @usableFromInline
    static func pieceEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        let count = bytes.count
        let first = unsafe bytes[start]

        // 1. Contractions, case-sensitive ASCII: 's 't 'm 'd, then 're 've 'll.
        if first == UInt8(ascii: "'") && start + 1 < count {
            let second = unsafe bytes[start + 1]
            switch second {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                return start + 2
            case UInt8(ascii: "r"), UInt8(ascii: "v"), UInt8(ascii: "l"):
                if start + 2 < count {
                    let third = unsafe bytes[start + 2]
                    if (second == UInt8(ascii: "r") && third == UInt8(ascii: "e"))
                        || (second == UInt8(ascii: "v") && third == UInt8(ascii: "e"))
                        || (second == UInt8(ascii: "l") && third == UInt8(ascii: "l"))
                    {
                        return start + 3
                    }
                }
            default:
                break
            }
        }

        var (cls, length) = unsafe classify(bytes, start)
        var position = start
        // 2. One U+0020 attaches to a following letter, number or other run.
        if first == 0x20 && start + 1 < count {
            let next = unsafe classify(bytes, start + 1)
            if next.cls != ScalarClass.whitespace.rawValue {
                position = start + 1
                (cls, length) = next
            }
        }

        if cls != ScalarClass.whitespace.rawValue {
            // 3. A maximal run of one class: letters, numbers, or everything else.
            position += length
            while position < count {
                let unit = unsafe classify(bytes, position)
                if unit.cls != cls { break }
                position += unit.length
            }
            return position
        }

        // 4. Whitespace: the whole run at the end of text; otherwise a run of two or more
        //    gives back its last character (`\s+(?!\S)`); a lone one is its own piece (`\s`).
        var lastStart = start
        var runLength = 0
        position = start
        while position < count {
            let unit = unsafe classify(bytes, position)
            if unit.cls != ScalarClass.whitespace.rawValue { break }
            lastStart = position
            position += unit.length
            runLength += 1
        }
        if position == count || runLength == 1 { return position }
        return lastStart
    }
}
