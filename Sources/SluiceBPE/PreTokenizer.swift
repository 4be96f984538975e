// Performance notes:
// - No regex: GPT-2's pattern is decided by one scalar class per position, so the splitter is
//   a hand-written scanner over UTF-8 bytes. ASCII bytes are classified by compares; only
//   bytes >= 0x80 decode a scalar and read the generated Unicode 16 table.
// - ASCII letter and digit runs (most of English text) are skipped 8 bytes at a time with
//   SWAR range tests. Measured on the benchmark corpus (103.6 MB, 25.1 M pieces, one thread,
//   best of 3 in paired runs): 0.28 s with a 256-entry table and a byte loop, 0.18 s with it.
// - Where 66 bytes from a piece start are ASCII, `Pieces` takes the piece starts of 64 of
//   them at once from class masks (`asciiBlockStarts`), so a piece costs a bit scan instead
//   of a branch on its kind, which mispredicted about once a piece: the pre-tokenizer pass
//   0.198-0.217 s -> 0.107-0.124 s (minimum of 4-6 paired rounds), the whole encode about
//   6 % faster. Other text goes through `pieceEnd` as before.
// - Invalid UTF-8 never traps: a byte that does not start a well-formed sequence is one
//   "other" unit of one byte, so every byte lands in exactly one piece and decode round-trips.

/// Splits UTF-8 text into GPT-2 pre-tokenizer pieces exactly as tiktoken 0.14 applies
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`
/// with Unicode 16.0 property tables (see shared/specs/gpt2-pretokenizer.md, §1).
public enum PreTokenizer {
    /// Class of an ASCII byte (`byte < 0x80`), computed: on this machine the compares beat a
    /// 256-entry table read (a load on every byte's critical path), measured on the benchmark
    /// corpus's pre-tokenizer pass.
    @inline(__always)
    @usableFromInline
    static func asciiClass(_ byte: UInt8) -> UInt8 {
        if (byte | 0x20) &- 0x61 < 26 { return ScalarClass.letter.rawValue }
        if byte &- 0x30 < 10 { return ScalarClass.number.rawValue }
        if byte == 0x20 || byte &- 0x09 < 5 { return ScalarClass.whitespace.rawValue }
        return ScalarClass.other.rawValue
    }

    /// The high bit of each byte of `word` that is not an ASCII letter (SWAR, no carries
    /// between bytes: every sum stays below 0x100).
    @inline(__always)
    static func nonLetterBits(_ word: UInt64) -> UInt64 {
        let high: UInt64 = 0x8080_8080_8080_8080
        let folded = (word | 0x2020_2020_2020_2020) & 0x7F7F_7F7F_7F7F_7F7F  // A-Z → a-z
        let atLeastA = folded &+ 0x1F1F_1F1F_1F1F_1F1F  // high bit: folded >= 0x61
        let pastZ = folded &+ 0x0505_0505_0505_0505  // high bit: folded >= 0x7B
        let letters = atLeastA & ~pastZ & ~word & high
        return ~letters & high
    }

    /// The high bit of each byte of `word` that is not an ASCII digit.
    @inline(__always)
    static func nonDigitBits(_ word: UInt64) -> UInt64 {
        let high: UInt64 = 0x8080_8080_8080_8080
        let low = word & 0x7F7F_7F7F_7F7F_7F7F
        let atLeast0 = low &+ 0x5050_5050_5050_5050  // high bit: low >= 0x30
        let past9 = low &+ 0x4646_4646_4646_4646  // high bit: low >= 0x3A
        let digits = atLeast0 & ~past9 & ~word & high
        return ~digits & high
    }

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

    /// The pieces of `text`, as byte ranges, found the way the encoder finds them; for tests
    /// and tools, not the hot path.
    public static func pieces(_ text: [UInt8]) -> [Range<Int>] {
        var result: [Range<Int>] = []
        unsafe text.withUnsafeBufferPointer { bytes in
            var pieces = unsafe Pieces(bytes, .shared)
            while let piece = pieces.next() { result.append(piece) }
        }
        return result
    }

    /// How many pieces `text` splits into: the pre-tokenizer's cost alone, for benchmarks.
    public static func pieceCount(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        var pieces = unsafe Pieces(text, .shared)
        var count = 0
        while pieces.next() != nil { count &+= 1 }
        return count
    }

    // MARK: - 64 ASCII bytes at a time

    /// Bytes a block reads: 64 whose piece starts it decides, the byte after them (does a
    /// whitespace run end at the last one?) and one more (a contraction that starts there).
    static let blockReach = 66
    /// The bytes whose ASCII-ness a block checks: `asciiBlockStarts` gives all 64 starts when
    /// it reports this many.
    static let blockASCIIBytes = 65

    /// Bit k set where a piece starts at `base + k`, for the 64 bytes from `base`, which must
    /// be a piece start (bit 0 is always set), and how many of the 65 bytes from `base` are
    /// ASCII before the first that is not. A start is decided by the bytes just before, at
    /// and after it, so before a non-ASCII byte at `base + f` only bits 0 ..< f - 1 are
    /// given; the caller reads on from there with `pieceEnd`.
    ///
    /// For ASCII, every rule of the pattern is decided by the classes of a byte and its
    /// neighbours, so the starts are bit operations on class masks, with no branch per piece:
    /// a class changes (letter, digit, other) or a whitespace run begins; the last byte of a
    /// whitespace run starts a piece of its own, and when it is U+0020 it joins the run after
    /// it instead (`\s+(?!\S)`, then ` ?X`); a contraction at a piece start ends 2 or 3
    /// bytes on. The end of the text (`\s++$`) never falls inside a block: the caller leaves
    /// the last `blockReach` bytes to `pieceEnd`.
    @inline(__always)
    static func asciiBlockStarts(_ text: UnsafeBufferPointer<UInt8>, _ base: Int) -> (starts: UInt64, asciiBytes: Int) {
        guard let pointer = text.baseAddress else { return (1, 0) }
        let raw = unsafe UnsafeRawPointer(pointer + base)
        let high: UInt64 = 0x8080_8080_8080_8080
        var nonASCII: UInt64 = 0
        var letters: UInt64 = 0
        var digits: UInt64 = 0
        var white: UInt64 = 0
        var spaces: UInt64 = 0
        var apostrophes: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            let word = UInt64(littleEndian: unsafe raw.loadUnaligned(fromByteOffset: Int(shift), as: UInt64.self))
            nonASCII |= gatherHighBits(word & high) &<< shift
            let letter = ~nonLetterBits(word) & high
            let digit = ~nonDigitBits(word) & high
            // The two tests below may carry out of a non-ASCII byte, but only into later
            // bytes, whose starts are not given.
            let space = zeroBytes(word ^ 0x2020_2020_2020_2020)
            let control = (word &+ 0x7777_7777_7777_7777) & ~(word &+ 0x7272_7272_7272_7272) & high  // 09-0D
            let apostrophe = zeroBytes(word ^ 0x2727_2727_2727_2727)
            letters |= gatherHighBits(letter) &<< shift
            digits |= gatherHighBits(digit) &<< shift
            spaces |= gatherHighBits(space) &<< shift
            white |= gatherHighBits(space | control) &<< shift
            apostrophes |= gatherHighBits(apostrophe) &<< shift
            shift &+= 8
        }
        let after = unsafe raw.load(fromByteOffset: 64, as: UInt8.self)
        let asciiBytes = nonASCII != 0 ? nonASCII.trailingZeroBitCount : after < 0x80 ? blockASCIIBytes : 64
        guard asciiBytes >= 2 else { return (1, asciiBytes) }
        // A non-ASCII `after` reads as other; bit 63 is not given then anyway.
        let afterIsWhite: UInt64 = asciiClass(after) == ScalarClass.whitespace.rawValue ? 1 : 0
        let other = ~(letters | digits | white)
        let lastWhite = white & ~(white &>> 1 | afterIsWhite &<< 63)
        var starts = (letters & ~(letters &<< 1)) | (digits & ~(digits &<< 1)) | (other & ~(other &<< 1))
        starts &= ~((lastWhite & spaces) &<< 1)
        starts |= (white & ~(white &<< 1)) | lastWhite | 1
        var contractions = apostrophes & starts
        while contractions != 0 {
            let k = contractions.trailingZeroBitCount
            contractions &= contractions &- 1
            let second = unsafe raw.load(fromByteOffset: k &+ 1, as: UInt8.self)
            let third = unsafe raw.load(fromByteOffset: k &+ 2, as: UInt8.self)
            switch second {
            case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
                starts = (starts & ~(1 << (k &+ 1))) | (1 << (k &+ 2))
            case UInt8(ascii: "r") where third == UInt8(ascii: "e"),
                UInt8(ascii: "v") where third == UInt8(ascii: "e"),
                UInt8(ascii: "l") where third == UInt8(ascii: "l"):
                starts = (starts & ~(3 << (k &+ 1))) | (1 << (k &+ 3))
            default:
                break
            }
        }
        let given: UInt64 = asciiBytes == blockASCIIBytes ? ~0 : (1 << (asciiBytes &- 1)) &- 1
        return (starts & given | 1, asciiBytes)
    }

    /// The high bit of each zero byte of `word`, whose bytes are all below 0x80.
    @inline(__always)
    static func zeroBytes(_ word: UInt64) -> UInt64 {
        ~((word &+ 0x7F7F_7F7F_7F7F_7F7F) | word) & 0x8080_8080_8080_8080
    }

    /// The high bits of `word`'s 8 bytes as 8 bits, byte k to bit k: the multiply moves the
    /// bit of byte k to bit 56 + k, and no two partial products meet, so nothing carries.
    @inline(__always)
    static func gatherHighBits(_ word: UInt64) -> UInt64 {
        ((word &>> 7) &* 0x0102_0408_1020_4080) &>> 56
    }

    /// Class and byte length of the unit starting at `index` (`index < bytes.count`).
    @inline(__always)
    @usableFromInline
    static func classify(_ bytes: UnsafeBufferPointer<UInt8>, _ index: Int, _ tables: ClassTables = .shared)
        -> (cls: UInt8, length: Int)
    {
        let lead = unsafe bytes[index]
        if lead < 0x80 { return (asciiClass(lead), 1) }
        return unsafe classifyMultiByte(bytes, index, lead, tables)
    }

    @usableFromInline
    static func classifyMultiByte(
        _ bytes: UnsafeBufferPointer<UInt8>, _ index: Int, _ lead: UInt8, _ tables: ClassTables
    )
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
        return unsafe (tables.unicode[Int(value)], length)
    }

    /// End (exclusive) of the piece that starts at `start` (`start < bytes.count`).
    @inline(__always)
    @usableFromInline
    static func pieceEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ tables: ClassTables = .shared) -> Int {
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

        var (cls, length) = unsafe classify(bytes, start, tables)
        var position = start
        // 2. One U+0020 attaches to a following letter, number or other run.
        if first == 0x20 && start + 1 < count {
            let next = unsafe classify(bytes, start + 1, tables)
            if next.cls != ScalarClass.whitespace.rawValue {
                position = start + 1
                (cls, length) = next
            }
        }

        if cls != ScalarClass.whitespace.rawValue {
            // 3. A maximal run of one class: letters, numbers, or everything else. ASCII letter
            //    and digit runs are scanned 8 bytes at a time until a byte of another class.
            position += length
            if length == 1 && cls == ScalarClass.letter.rawValue {
                position = unsafe wordRunEnd(bytes, from: position, nonMembers: nonLetterBits)
            } else if length == 1 && cls == ScalarClass.number.rawValue {
                position = unsafe wordRunEnd(bytes, from: position, nonMembers: nonDigitBits)
            }
            while position < count {
                let unit = unsafe classify(bytes, position, tables)
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
            let unit = unsafe classify(bytes, position, tables)
            if unit.cls != ScalarClass.whitespace.rawValue { break }
            lastStart = position
            position += unit.length
            runLength += 1
        }
        if position == count || runLength == 1 { return position }
        return lastStart
    }

    /// Skips whole 8-byte words of `bytes` from `position` while `nonMembers` finds no byte
    /// outside the run's ASCII class, then to the first such byte of the last word read; the
    /// caller's byte loop decides that byte (it may be a multi-byte letter that continues the
    /// run, or where the run ends).
    @inline(__always)
    static func wordRunEnd(
        _ bytes: UnsafeBufferPointer<UInt8>, from position: Int, nonMembers: (UInt64) -> UInt64
    ) -> Int {
        guard let base = bytes.baseAddress else { return position }
        let raw = unsafe UnsafeRawPointer(base)
        var position = position
        while position &+ 8 <= bytes.count {
            let word = UInt64(littleEndian: unsafe raw.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let outside = nonMembers(word)
            if outside != 0 { return position &+ outside.trailingZeroBitCount &>> 3 }
            position &+= 8
        }
        return position
    }
}

/// The pieces of a text in order, as the encoder reads them: 64 ASCII bytes at a time where a
/// block's class masks decide them, one `pieceEnd` at a time elsewhere (non-ASCII text, a
/// piece longer than a block, the last bytes of the text). The two agree exactly; a test
/// compares them, and both with the regex.
@safe
@usableFromInline
struct Pieces {
    private let text: UnsafeBufferPointer<UInt8>
    private let tables: ClassTables
    private var start = 0
    /// Piece starts of the current block after `start`, as bits from `blockBase`.
    private var pending: UInt64 = 0
    private var blockBase = 0
    /// No block is tried before this offset, just past the non-ASCII byte the last block met.
    private var scalarUntil = 0

    @inline(__always)
    @usableFromInline
    init(_ text: UnsafeBufferPointer<UInt8>, _ tables: ClassTables) {
        unsafe self.text = text
        self.tables = tables
    }

    @inline(__always)
    @usableFromInline
    mutating func next() -> Range<Int>? {
        let count = unsafe text.count
        guard start < count else { return nil }
        let end: Int
        if pending != 0 {
            end = blockBase &+ pending.trailingZeroBitCount
            pending &= pending &- 1
        } else {
            var starts: UInt64 = 0
            if start >= scalarUntil && start &+ PreTokenizer.blockReach <= count {
                let block = unsafe PreTokenizer.asciiBlockStarts(text, start)
                starts = block.starts
                // No block before the non-ASCII byte is behind: one would stop at it again.
                if block.asciiBytes < PreTokenizer.blockASCIIBytes { scalarUntil = start &+ block.asciiBytes &+ 1 }
            }
            // Bit 0 is `start` itself; a block with no other start holds part of one long piece.
            if starts > 1 {
                blockBase = start
                pending = starts & (starts &- 1)
                end = blockBase &+ pending.trailingZeroBitCount
                pending &= pending &- 1
            } else {
                end = unsafe PreTokenizer.pieceEnd(text, from: start, tables)
            }
        }
        let piece = start..<end
        start = end
        return piece
    }
}

/// The Unicode class table as a plain pointer, read for every non-ASCII scalar: a global array
/// costs a lazy-initialization check and a bounds check per read. Hot loops fetch `shared` once
/// and pass it down.
@safe
@usableFromInline
struct ClassTables: @unchecked Sendable {
    // Invariant: `unicode` points into `Storage.instance`'s buffer of 0x110000 classes (one per
    // code point), allocated once per process and never freed; nothing writes it after
    // `Storage.init`.
    @usableFromInline let unicode: UnsafePointer<UInt8>

    @usableFromInline
    static var shared: ClassTables { Storage.instance.tables }

    private final class Storage: @unchecked Sendable {
        static let instance = Storage()
        let tables: ClassTables

        init() {
            let unicode = UnsafeMutablePointer<UInt8>.allocate(capacity: UnicodeClassTable.count)
            unsafe unicode.initialize(repeating: ScalarClass.other.rawValue, count: UnicodeClassTable.count)
            unsafe UnicodeClassTable.fill(unicode)
            unsafe tables = ClassTables(unicode: UnsafePointer(unicode))
        }
    }
}
