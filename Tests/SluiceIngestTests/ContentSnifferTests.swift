import SluiceIngest
import Testing

/// The binary rule's thresholds, one byte either side of each, with the counted bytes at every
/// offset within an 8-byte word (the sniffer skips printable ASCII a word at a time).
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
}
