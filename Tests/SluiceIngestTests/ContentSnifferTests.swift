import SluiceIngest
import Testing

/// The binary rule's thresholds, one byte either side of each, with the counted bytes at every
/// offset within an 8-byte word (the sniffer skips plain ASCII 32 bytes, then 8 bytes, at a time).
@Suite("ContentSniffer")
struct ContentSnifferTests {
    /// `count` bytes of printable text with `bad` bytes at `positions(k)` spread over the sample.
    static func sample(count: Int, bad: [(UInt8, Int)]) -> [UInt8] {
        let text = Array("The quick brown fox jumps over the lazy dog; 0123456789 ~!@#$%^&*()_+{}|:<>?".utf8)
        var bytes = (0..<count).map { text[$0 % text.count] }
        var position = 5
        for (byte, times) in bad {
            for _ in 0..<times {
                bytes[position % count] = byte
                // A stride of 9 puts successive bytes at every offset within a word.
                position += 9
            }
        }
        return bytes
    }

    static func reason(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { ContentSniffer.binaryReason($0) }
    }

    @Test(
        "10 % control bytes is binary, one fewer is text: C0 controls and DEL",
        arguments: [UInt8(0x01), 0x07, 0x1F, 0x7F])
    func controlThreshold(control: UInt8) {
        #expect(Self.reason(Self.sample(count: 1000, bad: [(control, 100)])) != nil)
        #expect(Self.reason(Self.sample(count: 1000, bad: [(control, 99)])) == nil)
    }

    @Test("16 NULs in 1,600 bytes is binary, 15 is text")
    func nulThreshold() {
        #expect(Self.reason(Self.sample(count: 1600, bad: [(0, 16)])) != nil)
        #expect(Self.reason(Self.sample(count: 1600, bad: [(0, 15)])) == nil)
    }

    @Test("control bytes and invalid UTF-8 together: 30 % is binary, one fewer is text")
    func mixedThreshold() {
        #expect(Self.reason(Self.sample(count: 1000, bad: [(0xFF, 201), (0x02, 99)])) != nil)
        #expect(Self.reason(Self.sample(count: 1000, bad: [(0xFF, 200), (0x02, 99)])) == nil)
    }

    @Test("the allowed controls, every printable byte and valid UTF-8 are text")
    func textIsText() {
        let allowed = Self.sample(count: 1000, bad: [(0x09, 40), (0x0A, 40), (0x0D, 40), (0x1B, 40), (0x08, 40)])
        #expect(Self.reason(allowed) == nil)
        #expect(Self.reason(Array(0x20...0x7E)) == nil)
        #expect(Self.reason(Array(String(repeating: "日本語のテキスト, Ünïcødé ✓ ", count: 40).utf8)) == nil)
    }

    /// The binary rule's counts, byte by byte with no skipping, for samples that start with no
    /// signature: the message `binaryReason` must give, or nil.
    static func referenceReason(_ bytes: [UInt8]) -> String? {
        var (nul, control, invalid, index) = (0, 0, 0, 0)
        let count = bytes.count
        scan: while index < count {
            let byte = bytes[index]
            switch byte {
            case 0: nul += 1
            case 0x08...0x0D, 0x1B, 0x20...0x7E: break
            case 0x01...0x1F, 0x7F: control += 1
            default:
                let (length, low, high): (Int, UInt8, UInt8)
                switch byte {
                case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
                case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
                case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
                case 0xED: (length, low, high) = (3, 0x80, 0x9F)
                case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
                case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
                case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
                default:
                    invalid += 1
                    index += 1
                    continue scan
                }
                if index + length > count { break scan }
                let valid =
                    bytes[index + 1] >= low && bytes[index + 1] <= high
                    && (2..<length).allSatisfy { bytes[index + $0] & 0xC0 == 0x80 }
                if valid {
                    index += length
                } else {
                    invalid += 1
                    index += 1
                }
                continue scan
            }
            index += 1
        }
        if (nul >= 16 && nul * 100 >= count) || nul * 2 >= count {
            return "binary data (\(nul) NUL bytes in the first \(count))"
        }
        if control * 10 >= count || (control + invalid) * 10 >= count * 3 {
            return "binary data (\(control + invalid) control bytes or invalid UTF-8 sequences in the first \(count))"
        }
        return nil
    }

    @Test("the word and 32-byte skips count exactly what a byte-by-byte scan counts")
    func skipsMatchByteScan() {
        // Text-like runs with line ends, tabs and CRs between them, and now and then a byte the
        // rule counts or one next to it (0x08, 0x0B, 0x0C, 0x1F, 0x20, 0x7E, 0x7F), often right
        // after a line end, where the skips' borrow tricks could go wrong.
        let rare: [UInt8] = [
            0x00, 0x01, 0x08, 0x0B, 0x0C, 0x1B, 0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xBF, 0xC3, 0xED, 0xF0, 0xFF,
        ]
        let ends: [UInt8] = [0x0A, 0x09, 0x0D]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33) % bound
        }
        var binary = 0
        for round in 0..<3000 {
            var bytes: [UInt8] = []
            let length = 1 + next(400)
            let density = 2 + round % 8
            while bytes.count < length {
                switch next(density) {
                case 0: bytes.append(rare[next(rare.count)])
                case 1: bytes.append(ends[next(ends.count)])
                case 2: bytes += [ends[next(ends.count)], rare[next(rare.count)]]
                case 3: bytes += Array("é日".utf8)
                default: bytes.append(UInt8(0x21 + next(0x5E)))
                }
            }
            if bytes.first.map({ [0xFF, 0xFE, 0x7F, 0x00].contains($0) }) ?? false { bytes[0] = 0x41 }
            let expected = Self.referenceReason(bytes)
            #expect(Self.reason(bytes) == expected, "sample \(round): \(bytes)")
            if expected != nil { binary += 1 }
        }
        #expect(binary > 300 && binary < 2700, "the samples cover both sides of the rule: \(binary) binary")
    }
}
