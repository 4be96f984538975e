import SluiceIO
import Testing

@testable import SluiceIngest

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

    /// The binary rule's counts, byte by byte with no skipping.
    static func referenceCounts(_ bytes: [UInt8]) -> ContentSniffer.Counts {
        var counts = ContentSniffer.Counts()
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0: counts.nul += 1
            case 0x08...0x0D, 0x1B, 0x20...0x7E: break
            case 0x01...0x1F, 0x7F: counts.control += 1
            default:
                guard let (length, low, high) = UTF8Repair.sequenceShape(lead: byte) else {
                    counts.invalid += 1
                    break
                }
                if index + length > bytes.count { return counts }
                let valid =
                    bytes[index + 1] >= low && bytes[index + 1] <= high
                    && (2..<length).allSatisfy { bytes[index + $0] & 0xC0 == 0x80 }
                if valid {
                    index += length
                    continue
                }
                counts.invalid += 1
            }
            index += 1
        }
        return counts
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
            let counts = bytes.withUnsafeBytes { ContentSniffer.counts($0) }
            #expect(counts == Self.referenceCounts(bytes), "sample \(round): \(bytes)")
            if Self.reason(bytes) != nil { binary += 1 }
        }
        #expect(binary > 300 && binary < 2700, "the samples cover both sides of the rule: \(binary) binary")
    }
}
