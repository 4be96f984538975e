import SluiceConfig
import SluiceIO

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
            let (repaired, bad) = UTF8Repair.repair(bytes, mode: .replace)
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

    func invalid(_ count: Int) -> Outcome {
        .rejected(
            .invalidUTF8,
            "\(count) invalid UTF-8 sequence(s); ingest.invalid_utf8 is \"\(settings.invalidUTF8.rawValue)\"")
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

extension TextPolicy {
    /// The same policy applied to a document that arrives in pieces, for documents too large
    /// to hold: each piece's output is handed on as soon as it is final. Fed the same bytes in
    /// any cut, it gives exactly `apply`'s bytes (tests compare them on random cuts).
    ///
    /// Cuts are safe because the state carried between pieces is small: at most 3 bytes of a
    /// UTF-8 sequence that may be incomplete (a decoder step always starts at an ASCII or lead
    /// byte, so the text before the last such byte is decoded alone exactly as in the whole),
    /// an odd byte and a high surrogate of UTF-16, and whether the last byte out was a CR.
    public struct Stream {
        public let policy: TextPolicy
        private var head: [UInt8] = []
        private var started = false
        private var utf16LittleEndian: Bool?
        private var carry: [UInt8] = []
        private var lastWasCR = false
        private var invalid = 0
        public private(set) var outputBytes = 0
        public private(set) var byteOrderMarkStripped = false

        public init(policy: TextPolicy) { self.policy = policy }

        /// Feeds the next piece; `emit` receives text that is final.
        public mutating func feed(_ piece: UnsafeRawBufferPointer, emit: ([UInt8]) throws -> Void) throws {
            if !started {
                head.append(contentsOf: piece)
                if head.count < 3 { return }
                try begin(emit: emit)
                return
            }
            try decode(Array(piece), final: false, emit: emit)
        }

        /// Ends the document: the outcome is `apply`'s (`.text` holds no bytes: they were emitted).
        public mutating func finish(repairs: inout Repairs, emit: ([UInt8]) throws -> Void) throws -> Outcome {
            if !started { try begin(emit: emit) }
            try decode([], final: true, emit: emit)
            if let early = rejectedEarly { return early }
            // Counted as `apply` counts them: before the invalid-UTF-8 verdict.
            if utf16LittleEndian != nil {
                repairs.utf16Decoded += 1
            } else if byteOrderMarkStripped {
                repairs.byteOrderMarksStripped += 1
            }
            if invalid > 0 {
                if policy.settings.invalidUTF8 != .replace { return policy.invalid(invalid) }
                repairs.invalidUTF8Sequences += invalid
                repairs.documentsWithInvalidUTF8 += 1
            }
            if outputBytes == 0 { return .rejected(.emptyDocument, "empty document") }
            return .text([])
        }

        /// Whether the document is rejected outright (UTF-16 under `utf16: "reject"`), known
        /// from its first bytes; the caller can stop reading it.
        public var rejectedEarly: Outcome? {
            guard started, utf16LittleEndian != nil, !policy.settings.decodeUTF16 else { return nil }
            return .rejected(.utf16Rejected, "UTF-16 text (byte order mark); set ingest.utf16 to \"decode\" to read it")
        }

        private mutating func begin(emit: ([UInt8]) throws -> Void) throws {
            started = true
            var bytes = head
            head = []
            if bytes.count >= 2 && ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF)) {
                utf16LittleEndian = bytes[0] == 0xFF
                bytes.removeFirst(2)
                if !policy.settings.decodeUTF16 { return }
            } else if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
                bytes.removeFirst(3)
                byteOrderMarkStripped = true
            }
            try decode(bytes, final: false, emit: emit)
        }

        private mutating func decode(_ piece: [UInt8], final: Bool, emit: ([UInt8]) throws -> Void) throws {
            if let littleEndian = utf16LittleEndian {
                guard policy.settings.decodeUTF16 else { return }
                var work = carry + piece
                carry = []
                if !final {
                    var keep = work.count % 2
                    // A high surrogate may pair with the next piece's first unit.
                    if work.count - keep >= 2 {
                        let at = work.count - keep - 2
                        let unit =
                            littleEndian
                            ? UInt16(work[at + 1]) << 8 | UInt16(work[at])
                            : UInt16(work[at]) << 8 | UInt16(work[at + 1])
                        if unit & 0xFC00 == 0xD800 { keep += 2 }
                    }
                    carry = Array(work.suffix(keep))
                    work.removeLast(keep)
                }
                let (decoded, bad) = TextPolicy.decodeUTF16((littleEndian ? [0xFF, 0xFE] : [0xFE, 0xFF]) + work)
                invalid += bad
                try output(decoded, emit: emit)
                return
            }
            var work = carry + piece
            carry = []
            if !final {
                // Keep from the last byte that starts a decoder step among the last four.
                var index = work.count - 1
                while index >= max(0, work.count - 4) {
                    if work[index] < 0x80 || work[index] >= 0xC0 {
                        carry = Array(work[index...])
                        work.removeLast(work.count - index)
                        break
                    }
                    index -= 1
                }
            }
            let (repaired, bad) = UTF8Repair.repair(work, mode: .replace)
            invalid += bad
            try output(repaired, emit: emit)
        }

        private mutating func output(_ text: [UInt8], emit: ([UInt8]) throws -> Void) throws {
            var bytes = text
            if policy.settings.stripNulBytes && bytes.contains(0) { bytes.removeAll { $0 == 0 } }
            if policy.settings.normalizeNewlines {
                // The LF of a CRLF cut between pieces; it closes the pair even when nothing follows.
                if lastWasCR && bytes.first == 0x0A {
                    bytes.removeFirst()
                    lastWasCR = false
                }
                if !bytes.isEmpty {
                    lastWasCR = bytes.last == 0x0D
                    if bytes.contains(0x0D) { bytes = TextPolicy.normalizeNewlines(bytes) }
                }
            }
            guard !bytes.isEmpty else { return }
            outputBytes += bytes.count
            try emit(bytes)
        }
    }
}
