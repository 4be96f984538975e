import Foundation

extension Vocabulary {
    /// The vocabulary as a tiktoken rank file (`base64(token bytes) rank` per line, in rank
    /// order) — what `load(tiktokenFile:)` reads back.
    public func tiktokenFile() -> [UInt8] {
        var text = ""
        for id in 0..<TokenID(count) {
            text += Data(bytes(of: id) ?? []).base64EncodedString() + " \(id)\n"
        }
        return Array(text.utf8)
    }

    /// Loads a tiktoken rank file: one `base64(token bytes) rank` per line, ranks `0 ..< n`.
    /// - Throws: `BPEError` naming the file and line of bad base64, a duplicate token or rank,
    ///   or the first missing rank.
    public static func load(tiktokenFile path: String) throws(BPEError) -> Vocabulary {
        try Vocabulary(tiktokenData: readFile(path), source: path)
    }

    /// Parses the contents of a tiktoken rank file; `source` names it in errors.
    public convenience init(tiktokenData data: [UInt8], source: String = "<rank file>") throws(BPEError) {
        // GPT-2's encoder.json given alone is the common mistake: say what it needs.
        if let first = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }),
            first == UInt8(ascii: "{")
        {
            throw BPEError(
                .malformedLine, file: source, line: 1,
                "this is JSON, not a tiktoken rank file: GPT-2's encoder.json needs its merges file — add merges (its vocab.bpe; tokenizer.merges in a config, --merges on the command line)"
            )
        }
        // Every tokenize task is a process that parses this file once, so the parse is one
        // pass over the bytes: tokens decoded straight into one flat buffer, ranks read digit
        // by digit, no array or string per line (an array per token and its release were
        // more than half of the load time).
        var decoded: [UInt8] = []
        decoded.reserveCapacity(data.count * 3 / 4)
        var spans: [(start: UInt32, end: UInt32)] = []
        var lineOfRank: [Int] = []
        var ordered = true
        var lineNumber = 0
        var lineStart = 0
        while lineStart < data.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < data.count && data[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var end = lineEnd
            let start = lineStart
            lineStart = lineEnd + 1
            if end > start && data[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            // Fields are runs of non-space bytes; exactly two are expected.
            var fieldCount = 0
            var tokenField = 0..<0
            var rankField = 0..<0
            var position = start
            while position < end {
                while position < end && data[position] == UInt8(ascii: " ") { position += 1 }
                guard position < end else { break }
                let fieldStart = position
                while position < end && data[position] != UInt8(ascii: " ") { position += 1 }
                if fieldCount == 0 { tokenField = fieldStart..<position } else { rankField = fieldStart..<position }
                fieldCount += 1
            }
            if fieldCount == 0 { continue }
            guard fieldCount == 2 else {
                throw BPEError(
                    .malformedLine, file: source, line: lineNumber,
                    "expected \"BASE64TOKEN RANK\", got \(fieldCount) field(s); is this a tiktoken rank file?")
            }
            let tokenStart = decoded.count
            guard Base64.decode(data[tokenField], appendingTo: &decoded), decoded.count > tokenStart else {
                throw BPEError(.badBase64, file: source, line: lineNumber, "the token is not valid base64")
            }
            guard let rank = Self.rank(data[rankField]) else {
                throw BPEError(
                    .malformedLine, file: source, line: lineNumber,
                    "the rank \"\(Self.visible(data[rankField]))\" is not a non-negative integer")
            }
            if rank == spans.count {
                spans.append((0, 0))
                lineOfRank.append(0)
            } else if rank > spans.count {
                ordered = false
                spans.append(
                    contentsOf: repeatElement((start: UInt32(0), end: UInt32(0)), count: rank - spans.count + 1))
                lineOfRank.append(contentsOf: repeatElement(0, count: rank - lineOfRank.count + 1))
            } else {
                ordered = false
            }
            if lineOfRank[rank] != 0 {
                throw BPEError(
                    .duplicateRank, file: source, line: lineNumber,
                    "rank \(rank) was already given on line \(lineOfRank[rank]); every rank must appear once")
            }
            spans[rank] = (UInt32(tokenStart), UInt32(decoded.count))
            lineOfRank[rank] = lineNumber
        }
        if let missing = lineOfRank.firstIndex(of: 0) {
            throw BPEError(
                .missingRank, file: source,
                "rank \(missing) is missing (ranks go up to \(spans.count - 1)); ranks must be 0 ..< n with no gaps"
            )
        }
        // A file in rank order (every real one) is already laid out by rank.
        var offsets: [UInt32] = [0]
        offsets.reserveCapacity(spans.count + 1)
        if ordered {
            for span in spans { offsets.append(span.end) }
            try self.init(tokenBytes: decoded, tokenOffsets: offsets, source: source)
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(decoded.count)
            for span in spans {
                bytes.append(contentsOf: decoded[Int(span.start)..<Int(span.end)])
                offsets.append(UInt32(bytes.count))
            }
            try self.init(tokenBytes: bytes, tokenOffsets: offsets, source: source)
        }
    }

    /// Printable ASCII as itself, any other byte as `\xNN`, so an error shows what the field holds.
    static func visible(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { byte in
            if (0x20..<0x7F).contains(byte) { return String(UnicodeScalar(byte)) }
            let hex = String(byte, radix: 16, uppercase: true)
            return "\\x" + (hex.count < 2 ? "0" + hex : hex)
        }.joined()
    }

    /// A rank as `Int(String)` reads it (an optional sign, then ASCII digits), if it is in
    /// `0 ..< 2^31`.
    static func rank(_ text: ArraySlice<UInt8>) -> Int? {
        var digits = text[...]
        var negative = false
        if let sign = digits.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty else { return nil }
        var value = 0
        for digit in digits {
            guard digit &- UInt8(ascii: "0") < 10 else { return nil }
            value = value * 10 + Int(digit &- UInt8(ascii: "0"))
            if value >= 1 << 31 { return nil }
        }
        return negative && value != 0 ? nil : value
    }

    /// Loads GPT-2's original `encoder.json` + `vocab.bpe` pair.
    ///
    /// Ids in `encoder.json` that no merge produces (GPT-2's `<|endoftext|>`) are returned as
    /// special tokens. Every merge line is checked against the ids: merge i must yield id 256 + i.
    public static func load(
        encoderJSON encoderPath: String, vocabBPE mergesPath: String
    ) throws(BPEError) -> (vocabulary: Vocabulary, specialTokens: [String: TokenID]) {
        // Byte-level readers, not JSONSerialization and String: each `sluice run` loads these
        // twice, and Foundation's parse of the 1 MB encoder.json alone took 45 ms of ~130.
        // Keys, tokens and merges live in flat buffers, and ids index arrays (a dictionary only
        // for ids far above the entry count): an array and a hash-table entry per token cost
        // more than the tables' build.
        let byteOfScalar = GPT2ByteMapping.byteOfScalar
        let json = try EncoderJSON.entries(readFile(encoderPath), source: encoderPath)
        var mapped: [UInt8] = []
        mapped.reserveCapacity(json.keys.count)
        let dense = json.entries.count + 1024
        var spanOfID = [(start: Int32, end: Int32)](repeating: (-1, -1), count: dense)
        var sparse: [Int: (start: Int32, end: Int32)] = [:]
        var specialCandidates: [Int: String] = [:]
        func span(_ id: Int) -> Range<Int>? {
            let found = id < dense ? spanOfID[id] : sparse[id] ?? (-1, -1)
            return found.start < 0 ? nil : Int(found.start)..<Int(found.end)
        }
        for entry in json.entries {
            let key = json.keys[Int(entry.start)..<Int(entry.end)]
            let id = entry.id
            if let previous = span(id).map({ Array(mapped[$0]) }) ?? specialCandidates[id].map({ Array($0.utf8) }) {
                throw BPEError(
                    .duplicateRank, file: encoderPath,
                    "id \(id) is given to both \"\(String(decoding: key, as: UTF8.self))\" and \(describe(previous))")
            }
            let start = mapped.count
            if GPT2ByteMapping.appendBytes(ofUTF8: key, table: byteOfScalar, to: &mapped) {
                let range = (start: Int32(start), end: Int32(mapped.count))
                if id < dense { spanOfID[id] = range } else { sparse[id] = range }
            } else {
                mapped.removeSubrange(start...)
                specialCandidates[id] = String(decoding: key, as: UTF8.self)
            }
        }
        // Merge i as one run of bytes: its left half, then its right half.
        let mergesText = try readFile(mergesPath)
        var mergeBytes: [UInt8] = []
        var merges: [(start: Int32, end: Int32, line: Int32)] = []
        var lineNumber = 0
        for rawLine in mergesText.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.starts(with: Self.versionPrefix) { continue }
            guard let space = line.firstIndex(of: UInt8(ascii: " ")),
                !line[line.index(after: space)...].contains(UInt8(ascii: " "))
            else {
                throw BPEError(
                    .malformedLine, file: mergesPath, line: lineNumber, "expected two space-separated symbols")
            }
            let start = mergeBytes.count
            for part in [line[..<space], line[line.index(after: space)...]] {
                guard GPT2ByteMapping.appendBytes(ofUTF8: part, table: byteOfScalar, to: &mergeBytes) else {
                    throw BPEError(
                        .malformedLine, file: mergesPath, line: lineNumber,
                        "symbol \"\(String(decoding: part, as: UTF8.self))\" has a character outside GPT-2's byte alphabet"
                    )
                }
            }
            merges.append((Int32(start), Int32(mergeBytes.count), Int32(lineNumber)))
        }
        let ordinaryCount = 256 + merges.count
        var tokenBytes: [UInt8] = []
        tokenBytes.reserveCapacity(mapped.count)
        var tokenOffsets: [UInt32] = [0]
        tokenOffsets.reserveCapacity(ordinaryCount + 1)
        for id in 0..<ordinaryCount {
            guard let range = span(id) else {
                throw BPEError(
                    .missingRank, file: encoderPath,
                    "id \(id) is missing; \(mergesPath) has \(merges.count) merges, so ids 0 ..< \(ordinaryCount) must all be tokens"
                )
            }
            if id < 256 && range.count != 1 {
                throw BPEError(
                    .inconsistentMerges, file: encoderPath,
                    "id \(id) should be a single byte, got \(describe(Array(mapped[range])))")
            }
            tokenBytes.append(contentsOf: mapped[range])
            tokenOffsets.append(UInt32(tokenBytes.count))
        }
        for (index, merge) in merges.enumerated() {
            let made = mergeBytes[Int(merge.start)..<Int(merge.end)]
            let token = tokenBytes[Int(tokenOffsets[256 + index])..<Int(tokenOffsets[257 + index])]
            guard made.elementsEqual(token) else {
                throw BPEError(
                    .inconsistentMerges, file: mergesPath, line: Int(merge.line),
                    "this merge makes \(describe(Array(made))) but id \(256 + index) in \(encoderPath) is \(describe(Array(token)))"
                )
            }
        }
        var special: [String: TokenID] = [:]
        for id in ordinaryCount..<max(ordinaryCount, dense) {
            if let range = span(id) { special[String(decoding: mapped[range], as: UTF8.self)] = TokenID(id) }
        }
        for (id, range) in sparse where id >= ordinaryCount {
            special[String(decoding: mapped[Int(range.start)..<Int(range.end)], as: UTF8.self)] = TokenID(id)
        }
        for (id, text) in specialCandidates {
            guard id >= ordinaryCount else {
                throw BPEError(
                    .inconsistentMerges, file: encoderPath,
                    "token \"\(text)\" (id \(id)) is not in GPT-2's byte alphabet")
            }
            special[text] = TokenID(id)
        }
        return (try Vocabulary(tokenBytes: tokenBytes, tokenOffsets: tokenOffsets, source: encoderPath), special)
    }

    static let versionPrefix = Array("#version".utf8)

    static func readFile(_ path: String) throws(BPEError) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = unsafe String(cString: strerror(errno))
            throw BPEError(.unreadableFile, file: path, "cannot open: \(reason)")
        }
        defer { try? handle.close() }
        do {
            return [UInt8](try handle.readToEnd() ?? Data())
        } catch {
            throw BPEError(.unreadableFile, file: path, "cannot read: \(error.localizedDescription)")
        }
    }
}

/// GPT-2's reversible map between bytes and printable Unicode characters (`bytes_to_unicode`
/// in its `encoder.py`), used only to read `encoder.json` and `vocab.bpe`.
enum GPT2ByteMapping {
    static let byteToUnicode: [UInt32] = {
        var printable: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var mapped = printable.map { UInt32($0) }
        var next: UInt32 = 256
        for byte in 0..<256 where !printable.contains(byte) {
            printable.append(byte)
            mapped.append(next)
            next += 1
        }
        var table = [UInt32](repeating: 0, count: 256)
        for (byte, scalar) in zip(printable, mapped) { table[byte] = scalar }
        return table
    }()

    /// The byte each mapped scalar stands for, indexed by scalar value (all are below 0x144);
    /// -1 for a scalar outside the alphabet.
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: Int((byteToUnicode.max() ?? 0) + 1))
        for (byte, scalar) in byteToUnicode.enumerated() { table[Int(scalar)] = Int16(byte) }
        return table
    }()

    /// Appends the bytes that UTF-8 `text` spells in GPT-2's alphabet to `output`; false (with
    /// `output` partly appended) when it has a scalar outside it or is not UTF-8.
    static func appendBytes(ofUTF8 text: ArraySlice<UInt8>, table: [Int16], to output: inout [UInt8]) -> Bool {
        var index = text.startIndex
        while index < text.endIndex {
            let lead = text[index]
            index += 1
            var scalar = UInt32(lead)
            if lead >= 0x80 {
                // The alphabet's scalars are below 0x144: two-byte sequences at most.
                guard lead & 0xE0 == 0xC0, index < text.endIndex, text[index] & 0xC0 == 0x80 else { return false }
                scalar = UInt32(lead & 0x1F) << 6 | UInt32(text[index] & 0x3F)
                index += 1
            }
            guard Int(scalar) < table.count, table[Int(scalar)] >= 0 else { return false }
            output.append(UInt8(truncatingIfNeeded: table[Int(scalar)]))
        }
        return true
    }
}

/// Reads GPT-2's `encoder.json`: one JSON object whose values are non-negative integer ids.
/// Keys come back as UTF-8 bytes (escapes decoded), in file order.
enum EncoderJSON {
    /// Every key's UTF-8 bytes back to back, and each entry's key range and id in file order.
    struct Entries {
        var keys: [UInt8] = []
        var entries: [(start: Int32, end: Int32, id: Int)] = []
    }

    static func entries(_ data: [UInt8], source: String) throws(BPEError) -> Entries {
        var reader = Reader(data: data, source: source)
        return try reader.object()
    }

    struct Reader {
        let data: [UInt8]
        let source: String
        var index = 0

        init(data: [UInt8], source: String) {
            self.data = data
            self.source = source
            // A UTF-8 byte order mark is allowed before the object.
            if data.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        func failure(_ what: String) -> BPEError {
            let line = data[..<min(index, data.count)].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            return BPEError(.malformedLine, file: source, line: line, "not valid JSON at byte \(index): \(what)")
        }

        mutating func skipWhitespace() {
            while index < data.count, [0x20, 0x09, 0x0A, 0x0D].contains(data[index]) { index += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(BPEError) {
            skipWhitespace()
            guard index < data.count, data[index] == byte else { throw failure("expected \(what)") }
            index += 1
        }

        mutating func object() throws(BPEError) -> Entries {
            skipWhitespace()
            guard index < data.count, data[index] == UInt8(ascii: "{") else {
                throw BPEError(.malformedLine, file: source, "expected a JSON object mapping token strings to ids")
            }
            index += 1
            var result = Entries()
            result.keys.reserveCapacity(data.count / 2)
            result.entries.reserveCapacity(data.count / 12)
            skipWhitespace()
            if index < data.count, data[index] == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    try expect(UInt8(ascii: "\""), "a string key")
                    let start = result.keys.count
                    try string(into: &result.keys)
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    let id = try id(of: result.keys[start...])
                    result.entries.append((Int32(start), Int32(result.keys.count), id))
                    skipWhitespace()
                    guard index < data.count else { throw failure("the object is not closed") }
                    let next = data[index]
                    index += 1
                    if next == UInt8(ascii: "}") { break }
                    guard next == UInt8(ascii: ",") else { throw failure("expected ',' or '}'") }
                }
            }
            skipWhitespace()
            guard index == data.count else { throw failure("text after the object") }
            return result
        }

        /// Appends the rest of a string whose opening quote was read, as UTF-8.
        mutating func string(into bytes: inout [UInt8]) throws(BPEError) {
            while true {
                guard index < data.count else { throw failure("a string is not closed") }
                let byte = data[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return
                case UInt8(ascii: "\\"):
                    guard index < data.count else { throw failure("a string is not closed") }
                    let escape = data[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(escape)
                    case UInt8(ascii: "b"): bytes.append(0x08)
                    case UInt8(ascii: "f"): bytes.append(0x0C)
                    case UInt8(ascii: "n"): bytes.append(0x0A)
                    case UInt8(ascii: "r"): bytes.append(0x0D)
                    case UInt8(ascii: "t"): bytes.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard index + 1 < data.count, data[index] == UInt8(ascii: "\\"),
                                data[index + 1] == UInt8(ascii: "u")
                            else { throw failure("a high surrogate without its low half") }
                            index += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw failure("a bad low surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let value = Unicode.Scalar(scalar) else { throw failure("a lone low surrogate") }
                        bytes.append(contentsOf: Array(String(Character(value)).utf8))
                    default:
                        throw failure("an unknown escape \\\(Character(Unicode.Scalar(escape)))")
                    }
                case 0..<0x20:
                    throw failure("a control character inside a string")
                default:
                    bytes.append(byte)
                }
            }
        }

        mutating func hex4() throws(BPEError) -> UInt32 {
            guard index + 4 <= data.count else { throw failure("a \\u escape needs 4 hex digits") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let digit = data[index]
                index += 1
                guard let nibble = Character(Unicode.Scalar(digit)).hexDigitValue else {
                    throw failure("a \\u escape needs 4 hex digits")
                }
                value = value << 4 | UInt32(nibble)
            }
            return value
        }

        /// A non-negative integer value; anything else is an error naming the key.
        mutating func id(of key: ArraySlice<UInt8>) throws(BPEError) -> Int {
            skipWhitespace()
            let start = index
            var value = 0
            while index < data.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(data[index]), value < 1 << 40 {
                value = value * 10 + Int(data[index] - UInt8(ascii: "0"))
                index += 1
            }
            let next = index < data.count ? data[index] : UInt8(ascii: "}")
            guard index > start, value < 1 << 31, [0x20, 0x09, 0x0A, 0x0D, 0x2C, 0x7D].contains(next) else {
                throw BPEError(
                    .malformedLine, file: source,
                    "token \"\(String(decoding: key, as: UTF8.self))\": id must be a non-negative integer")
            }
            return value
        }
    }
}

/// Standard base64 (RFC 4648, with or without padding), as tiktoken rank files use.
enum Base64 {
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(char)] = UInt8(index)
        }
        return table
    }()

    /// Appends the bytes `text` encodes to `output`; false (with `output` partly appended)
    /// if `text` is not valid base64.
    static func decode(_ text: ArraySlice<UInt8>, appendingTo output: inout [UInt8]) -> Bool {
        let values = Self.values  // read once: a static's lazy-init check per byte showed in profiles
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for char in text {
            if char == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return false }
            let value = values[Int(char)]
            guard value != 0xFF else { return false }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero padding, and the '=' count must fit the length.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0, padding <= 2 else { return false }
        if padding > 0 && (text.count % 4 != 0) { return false }
        return true
    }
}
