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
        var tokensByRank: [[UInt8]?] = []
        var lineOfRank: [Int] = []
        var lineNumber = 0
        var lineStart = 0
        while lineStart < data.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < data.count && data[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var line = data[lineStart..<lineEnd]
            lineStart = lineEnd + 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == UInt8(ascii: " ") }) { continue }
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count == 2 else {
                throw BPEError(
                    .malformedLine, file: source, line: lineNumber,
                    "expected \"BASE64TOKEN RANK\", got \(fields.count) field(s); is this a tiktoken rank file?")
            }
            guard let token = Base64.decode(fields[0]), !token.isEmpty else {
                throw BPEError(.badBase64, file: source, line: lineNumber, "the token is not valid base64")
            }
            guard let rank = Int(String(decoding: fields[1], as: UTF8.self)), rank >= 0, rank < 1 << 31 else {
                throw BPEError(
                    .malformedLine, file: source, line: lineNumber,
                    "the rank \"\(String(decoding: fields[1], as: UTF8.self))\" is not a non-negative integer")
            }
            if rank >= tokensByRank.count {
                tokensByRank.append(contentsOf: repeatElement(nil, count: rank - tokensByRank.count + 1))
                lineOfRank.append(contentsOf: repeatElement(0, count: rank - lineOfRank.count + 1))
            }
            if tokensByRank[rank] != nil {
                throw BPEError(
                    .duplicateRank, file: source, line: lineNumber,
                    "rank \(rank) was already given on line \(lineOfRank[rank]); every rank must appear once")
            }
            tokensByRank[rank] = Array(token)
            lineOfRank[rank] = lineNumber
        }
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(tokensByRank.count)
        for (rank, token) in tokensByRank.enumerated() {
            guard let token else {
                throw BPEError(
                    .missingRank, file: source,
                    "rank \(rank) is missing (ranks go up to \(tokensByRank.count - 1)); ranks must be 0 ..< n with no gaps"
                )
            }
            tokens.append(token)
        }
        try self.init(tokensByRank: tokens, source: source)
    }

    /// Loads GPT-2's original `encoder.json` + `vocab.bpe` pair.
    ///
    /// Ids in `encoder.json` that no merge produces (GPT-2's `<|endoftext|>`) are returned as
    /// special tokens. Every merge line is checked against the ids: merge i must yield id 256 + i.
    public static func load(
        encoderJSON encoderPath: String, vocabBPE mergesPath: String
    ) throws(BPEError) -> (vocabulary: Vocabulary, specialTokens: [String: TokenID]) {
        let encoderData = try readFile(encoderPath)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(encoderData))
        } catch {
            throw BPEError(.malformedLine, file: encoderPath, "not valid JSON: \(error.localizedDescription)")
        }
        guard let encoder = object as? [String: Any] else {
            throw BPEError(.malformedLine, file: encoderPath, "expected a JSON object mapping token strings to ids")
        }
        let unicodeToByte = GPT2ByteMapping.unicodeToByte
        var byID: [Int: [UInt8]] = [:]
        var specialCandidates: [Int: String] = [:]
        for (text, value) in encoder {
            guard let id = value as? Int, id >= 0 else {
                throw BPEError(
                    .malformedLine, file: encoderPath, "token \"\(text)\": id must be a non-negative integer")
            }
            if let previous = byID[id] ?? specialCandidates[id].map({ Array($0.utf8) }) {
                throw BPEError(
                    .duplicateRank, file: encoderPath,
                    "id \(id) is given to both \"\(text)\" and \(describe(previous))")
            }
            var bytes: [UInt8] = []
            var mappable = true
            for scalar in text.unicodeScalars {
                guard let byte = unicodeToByte[scalar.value] else { mappable = false; break }
                bytes.append(byte)
            }
            if mappable { byID[id] = bytes } else { specialCandidates[id] = text }
        }
        let mergesText = try readFile(mergesPath)
        var merges: [(left: [UInt8], right: [UInt8], line: Int)] = []
        var lineNumber = 0
        for rawLine in mergesText.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.last == UInt8(ascii: "\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.starts(with: Array("#version".utf8)) { continue }
            let parts = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw BPEError(
                    .malformedLine, file: mergesPath, line: lineNumber, "expected two space-separated symbols")
            }
            var halves: [[UInt8]] = []
            for part in parts {
                var bytes: [UInt8] = []
                for scalar in part.unicodeScalars {
                    guard let byte = unicodeToByte[scalar.value] else {
                        throw BPEError(
                            .malformedLine, file: mergesPath, line: lineNumber,
                            "symbol \"\(part)\" has a character outside GPT-2's byte alphabet")
                    }
                    bytes.append(byte)
                }
                halves.append(bytes)
            }
            merges.append((halves[0], halves[1], lineNumber))
        }
        let ordinaryCount = 256 + merges.count
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(ordinaryCount)
        for id in 0..<ordinaryCount {
            guard let bytes = byID[id] else {
                throw BPEError(
                    .missingRank, file: encoderPath,
                    "id \(id) is missing; \(mergesPath) has \(merges.count) merges, so ids 0 ..< \(ordinaryCount) must all be tokens"
                )
            }
            if id < 256 && bytes.count != 1 {
                throw BPEError(
                    .inconsistentMerges, file: encoderPath, "id \(id) should be a single byte, got \(describe(bytes))")
            }
            tokens.append(bytes)
        }
        for (index, merge) in merges.enumerated() where merge.left + merge.right != tokens[256 + index] {
            throw BPEError(
                .inconsistentMerges, file: mergesPath, line: merge.line,
                "this merge makes \(describe(merge.left + merge.right)) but id \(256 + index) in \(encoderPath) is \(describe(tokens[256 + index]))"
            )
        }
        var special: [String: TokenID] = [:]
        for (id, bytes) in byID where id >= ordinaryCount {
            special[String(decoding: bytes, as: UTF8.self)] = TokenID(id)
        }
        for (id, text) in specialCandidates {
            guard id >= ordinaryCount else {
                throw BPEError(
                    .inconsistentMerges, file: encoderPath,
                    "token \"\(text)\" (id \(id)) is not in GPT-2's byte alphabet")
            }
            special[text] = TokenID(id)
        }
        return (try Vocabulary(tokensByRank: tokens, source: encoderPath), special)
    }

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

    static let unicodeToByte: [UInt32: UInt8] = {
        var inverse: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToUnicode.enumerated() { inverse[scalar] = UInt8(byte) }
        return inverse
    }()
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

    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for char in text {
            if char == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let value = values[Int(char)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero padding, and the '=' count must fit the length.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0, padding <= 2 else { return nil }
        if padding > 0 && (text.count % 4 != 0) { return nil }
        return output
    }
}
