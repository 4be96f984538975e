import SluiceConfig

// Performance notes: documents are checked for valid UTF-8 in one pass over the bytes; an
// ASCII fast path tests 8 bytes per step (validation fell from 20% to a few % of ingest time
// on the 103.6 MB benchmark tar). Only a document that needs changes is copied.

/// Turns the raw bytes of a document into the UTF-8 text Sluice tokenizes, per `IngestSettings`:
/// UTF-16 with a byte order mark decoded (or rejected), a UTF-8 BOM stripped, invalid UTF-8
/// replaced with U+FFFD exactly as Python's `bytes.decode("utf-8", errors="replace")` does
/// (or the document skipped, or the run failed), NUL bytes and line endings kept unless
/// configured otherwise.
public struct TextPolicy: Sendable {
    public enum Outcome: Equatable, Sendable {
        case text([UInt8])
        /// The document is not used; the reason is counted in the report.
        case rejected(IngestError.Reason, String)
    }

    /// What was changed in accepted documents, for the report.
    public struct Repairs: Sendable, Equatable {
        public var invalidUTF8Sequences = 0
        public var documentsWithInvalidUTF8 = 0
        public var utf16Decoded = 0
        public var byteOrderMarksStripped = 0
        public init() {}
    }

    public let settings: IngestSettings

    public init(settings: IngestSettings) { self.settings = settings }

    public func apply(_ raw: [UInt8], repairs: inout Repairs) -> Outcome {
        var bytes = raw
        if bytes.count >= 2 && ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF)) {
            guard settings.decodeUTF16 else {
                return .rejected(
                    .utf16Rejected, "UTF-16 text (byte order mark); set ingest.utf16 to \"decode\" to read it")
            }
            let (decoded, bad) = Self.decodeUTF16(bytes)
            bytes = decoded
            repairs.utf16Decoded += 1
            if bad > 0 {
                if settings.invalidUTF8 != .replace {
                    return invalid(bad)
                }
                repairs.invalidUTF8Sequences += bad
                repairs.documentsWithInvalidUTF8 += 1
            }
        } else {
            if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
                bytes.removeFirst(3)
                repairs.byteOrderMarksStripped += 1
            }
            let (repaired, bad) = Self.repairUTF8(bytes)
            if bad > 0 {
                if settings.invalidUTF8 != .replace { return invalid(bad) }
                bytes = repaired
                repairs.invalidUTF8Sequences += bad
                repairs.documentsWithInvalidUTF8 += 1
            }
        }
        if settings.stripNulBytes && bytes.contains(0) { bytes.removeAll { $0 == 0 } }
        if settings.normalizeNewlines && bytes.contains(0x0D) { bytes = Self.normalizeNewlines(bytes) }
        if bytes.isEmpty { return .rejected(.emptyDocument, "empty document") }
        return .text(bytes)
    }

    private func invalid(_ count: Int) -> Outcome {
        .rejected(
            .invalidUTF8,
            "\(count) invalid UTF-8 sequence(s); ingest.invalid_utf8 is \"\(settings.invalidUTF8.rawValue)\"")
    }

    /// Replaces each maximal invalid subpart with U+FFFD (Unicode's recommended practice, as
    /// CPython's decoder does). Returns the input unchanged when it is valid.
    public static func repairUTF8(_ bytes: [UInt8]) -> (bytes: [UInt8], replaced: Int) {
        guard let firstBad = firstInvalidUTF8(bytes) else { return (bytes, 0) }
        var output = Array(bytes[..<firstBad])
        output.reserveCapacity(bytes.count + 16)
        var replaced = 0
        var index = firstBad
        let count = bytes.count
        while index < count {
            let lead = bytes[index]
            if lead < 0x80 {
                output.append(lead)
                index += 1
                continue
            }
            let (length, low, high) = Self.sequenceShape(lead: lead) ?? (0, 0, 0)
            var consumed = 1
            var valid = length > 0
            while valid && consumed < length {
                guard index + consumed < count else { valid = false; break }
                let byte = bytes[index + consumed]
                let (lo, hi): (UInt8, UInt8) = consumed == 1 ? (low, high) : (0x80, 0xBF)
                guard byte >= lo && byte <= hi else { valid = false; break }
                consumed += 1
            }
            if valid {
                output.append(contentsOf: bytes[index..<index + length])
            } else {
                output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                replaced += 1
            }
            index += consumed
        }
        return (output, replaced)
    }

    /// For a lead byte ≥ 0x80: the sequence length and the allowed range of its second byte
    /// (Unicode Table 3-7, well-formed UTF-8), or nil if the byte cannot start a sequence.
    @inline(__always)
    static func sequenceShape(lead: UInt8) -> (length: Int, low: UInt8, high: UInt8)? {
        switch lead {
        case 0xC2...0xDF: (2, 0x80, 0xBF)
        case 0xE0: (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80, 0xBF)
        case 0xED: (3, 0x80, 0x9F)
        case 0xF0: (4, 0x90, 0xBF)
        case 0xF1...0xF3: (4, 0x80, 0xBF)
        case 0xF4: (4, 0x80, 0x8F)
        default: nil
        }
    }

    /// Offset of the first byte that is not part of well-formed UTF-8, or nil.
    public static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            // ASCII fast path: 8 bytes at a time while none has the high bit set.
            if count - index >= 8 {
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index, as: UInt64.self) }
                if word & 0x8080_8080_8080_8080 == 0 {
                    index += 8
                    continue
                }
            }
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            guard let (length, low, high) = Self.sequenceShape(lead: lead) else { return index }
            guard index + length <= count else { return index }
            let second = bytes[index + 1]
            guard second >= low && second <= high else { return index }
            for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 { return index }
            index += length
        }
        return nil
    }

    /// Decodes UTF-16 with a byte order mark to UTF-8; unpaired surrogates and a dangling odd
    /// byte become U+FFFD and are counted.
    public static func decodeUTF16(_ bytes: [UInt8]) -> (bytes: [UInt8], replaced: Int) {
        let littleEndian = bytes[0] == 0xFF
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var index = 2
        while index + 1 < bytes.count {
            let a = UInt16(bytes[index])
            let b = UInt16(bytes[index + 1])
            units.append(littleEndian ? (b << 8 | a) : (a << 8 | b))
            index += 2
        }
        var replaced = bytes.count % 2 == 1 ? 1 : 0
        var output: [UInt8] = []
        output.reserveCapacity(units.count * 2)
        var decoder = UTF16()
        var iterator = units.makeIterator()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): output.append(contentsOf: Array(String(scalar).utf8))
            case .emptyInput: break loop
            case .error:
                output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                replaced += 1
            }
        }
        if bytes.count % 2 == 1 { output.append(contentsOf: [0xEF, 0xBF, 0xBD]) }
        return (output, replaced)
    }

    /// CRLF → LF and lone CR → LF.
    static func normalizeNewlines(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0D {
                output.append(0x0A)
                if index + 1 < bytes.count && bytes[index + 1] == 0x0A { index += 1 }
            } else {
                output.append(byte)
            }
            index += 1
        }
        return output
    }
}
