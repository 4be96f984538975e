/// Well-formed UTF-8 checks and CPython-compatible repairs, shared by ingest (document text)
/// and the word-vector loaders (keys), so both treat a bad byte the same way.
public enum UTF8Repair {
    /// What happens to an invalid subpart: Python's errors="replace" or errors="ignore".
    public enum Mode: Sendable { case replace, ignore }

    /// Replaces each maximal invalid subpart with U+FFFD (Unicode's recommended practice, as
    /// CPython's decoder does with errors="replace"), or drops it (errors="ignore"). Returns the
    /// input unchanged when it is valid; `replaced` counts the subparts.
    public static func repair(_ bytes: [UInt8], mode: Mode) -> (bytes: [UInt8], replaced: Int) {
        guard let firstBad = firstInvalid(bytes) else { return (bytes, 0) }
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
                if mode == .replace { output.append(contentsOf: [0xEF, 0xBF, 0xBD]) }
                replaced += 1
            }
            index += consumed
        }
        return (output, replaced)
    }

    /// For a lead byte ≥ 0x80: the sequence length and the allowed range of its second byte
    /// (Unicode Table 3-7, well-formed UTF-8), or nil if the byte cannot start a sequence.
    @inline(__always)
    public static func sequenceShape(lead: UInt8) -> (length: Int, low: UInt8, high: UInt8)? {
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
    public static func firstInvalid(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBufferPointer { firstInvalid($0) }
    }

    /// Offset of the first byte that is not part of well-formed UTF-8, or nil.
    public static func firstInvalid(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            // ASCII fast path: 8 bytes at a time while none has the high bit set.
            if count - index >= 8 {
                let word = UnsafeRawBufferPointer(bytes).loadUnaligned(fromByteOffset: index, as: UInt64.self)
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
}
