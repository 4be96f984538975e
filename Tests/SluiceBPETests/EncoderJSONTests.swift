import Foundation
import SluiceBPE
import SluiceTestSupport
import Testing

/// GPT-2's `encoder.json` + `vocab.bpe` read by Sluice's own byte-level reader: escapes decode
/// to the same vocabulary as raw characters, and every malformed file built here is refused with
/// a one-line error naming the file (and the line or the byte where there is one).
@Suite("encoder.json + vocab.bpe")
struct EncoderJSONTests {
    /// GPT-2's `bytes_to_unicode` (its encoder.py): printable Latin-1 bytes stand for
    /// themselves, the other 68 for U+0100 onwards, in byte order.
    static let alphabet: [Unicode.Scalar] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var next = 0x100
        return (0..<256).map { byte in
            if printable.contains(byte) { return Unicode.Scalar(UInt8(byte)) }
            defer { next += 1 }
            return Unicode.Scalar(UInt32(next)) ?? "?"
        }
    }()

    static func spell(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { alphabet[Int($0)] }))
    }

    /// A JSON string literal of `text`: raw characters, or every scalar as a \u escape (astral
    /// ones as surrogate pairs).
    static func literal(_ text: String, escaped: Bool) -> String {
        guard escaped else {
            return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        }
        return "\"" + text.utf16.map { String(format: "\\u%04x", $0) }.joined() + "\""
    }

    /// The 256 bytes, two merges ("th", "the") and the special token.
    static func files(escaped: Bool) -> (encoder: String, merges: String) {
        var entries = (0..<256).map { "\(literal(spell([UInt8($0)]), escaped: escaped)): \($0)" }
        entries.append("\(literal(spell(Array("th".utf8)), escaped: escaped)): 256")
        entries.append("\(literal(spell(Array("the".utf8)), escaped: escaped)): 257")
        entries.append("\(literal("<|endoftext|>", escaped: escaped)): 258")
        entries.append("\(literal("😀", escaped: escaped)): 259")
        return ("{\n  " + entries.joined(separator: ",\n  ") + "\n}\n", "#version: 0.2\nt h\nth e\n")
    }

    static func load(encoder: String, merges: String) throws -> (vocabulary: Vocabulary, specials: [String: TokenID]) {
        let directory = try TemporaryDirectory()
        let result = try Vocabulary.load(
            encoderJSON: directory.write("encoder.json", encoder), vocabBPE: directory.write("vocab.bpe", merges))
        return (result.vocabulary, result.specialTokens)
    }

    @Test("\\u escapes (surrogate pairs too) load to the same vocabulary and specials as raw characters")
    func escapesEqualRawCharacters() throws {
        let raw = try Self.load(encoder: Self.files(escaped: false).encoder, merges: Self.files(escaped: false).merges)
        let escaped = try Self.load(
            encoder: Self.files(escaped: true).encoder, merges: Self.files(escaped: true).merges)
        #expect(raw.vocabulary.count == 258)
        #expect(raw.vocabulary.bytes(of: 257).map(Array.init) == Array("the".utf8))
        #expect(raw.vocabulary.bytes(of: 0x22).map(Array.init) == [0x22])
        #expect(raw.specials == ["<|endoftext|>": 258, "😀": 259])
        #expect(escaped.specials == raw.specials)
        for id in 0..<TokenID(raw.vocabulary.count) {
            #expect(escaped.vocabulary.bytes(of: id) == raw.vocabulary.bytes(of: id), "id \(id)")
        }
    }

    @Test("special tokens with ids far above the rest, spelled in GPT-2's alphabet or not, keep their ids")
    func farSpecialIDs() throws {
        let good = Self.files(escaped: false)
        let encoder = good.encoder.replacingOccurrences(
            of: "\n}\n",
            with:
                ",\n  \"<|far|>\": 2000000000,\n  \(Self.literal(Self.spell(Array("xyz".utf8)), escaped: false)): 70000\n}\n"
        )
        let loaded = try Self.load(encoder: encoder, merges: good.merges)
        #expect(loaded.vocabulary.count == 258)
        #expect(loaded.specials == ["<|endoftext|>": 258, "😀": 259, "<|far|>": 2_000_000_000, "xyz": 70000])
        #expect {
            try Self.load(
                encoder: encoder.replacingOccurrences(of: "70000", with: "2000000000"), merges: good.merges)
        } throws: { "\($0)".contains("id 2000000000 is given to both") }
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let name: String
        let encoder: String?
        let merges: String?
        let message: String
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(
            name: "cut in a key", encoder: "{\"a\": 0,\n \"b", merges: nil,
            message: "encoder.json:2: not valid JSON at byte 12: a string is not closed"),
        Bad(name: "an array", encoder: "[1, 2]", merges: nil, message: "encoder.json: expected a JSON object"),
        Bad(
            name: "a string id", encoder: "{\"a\": \"0\"}", merges: nil,
            message: "token \"a\": id must be a non-negative integer"),
        Bad(
            name: "a negative id", encoder: "{\"a\": -1}", merges: nil,
            message: "token \"a\": id must be a non-negative integer"),
        Bad(
            name: "a fractional id", encoder: "{\"a\": 1.5}", merges: nil,
            message: "token \"a\": id must be a non-negative integer"),
        Bad(name: "an unknown escape", encoder: "{\"\\q\": 0}", merges: nil, message: "unknown escape \\q"),
        Bad(
            name: "a lone high surrogate", encoder: "{\"\\ud83d\": 0}", merges: nil,
            message: "a high surrogate without its low half"),
        Bad(
            name: "a raw newline in a key", encoder: "{\"a\nb\": 0}", merges: nil,
            message: "a control character inside a string"),
        Bad(name: "a missing comma", encoder: "{\"a\": 0 \"b\": 1}", merges: nil, message: "expected ',' or '}'"),
        Bad(name: "text after the object", encoder: "{\"a\": 0} x", merges: nil, message: "text after the object"),
        Bad(
            name: "one id for two tokens", encoder: "{\"a\": 0, \"b\": 0}", merges: nil,
            message: "id 0 is given to both"),
        Bad(
            name: "a merge of three symbols", encoder: nil, merges: "#version: 0.2\nt h\nth e x\n",
            message: "vocab.bpe:3: expected two space-separated symbols"),
        Bad(
            name: "a symbol outside the alphabet", encoder: nil, merges: "#version: 0.2\nt 一\n",
            message: "vocab.bpe:2: symbol \"一\" has a character outside GPT-2's byte alphabet"),
        Bad(
            name: "a merge that makes another id", encoder: nil, merges: "#version: 0.2\nt h\nt e\n",
            message: "vocab.bpe:3: this merge makes"),
    ]

    @Test("malformed files are refused in one line naming the file, and the line or byte", arguments: bad)
    func malformed(_ bad: Bad) {
        let good = Self.files(escaped: false)
        #expect {
            try Self.load(encoder: bad.encoder ?? good.encoder, merges: bad.merges ?? good.merges)
        } throws: { error in
            let text = "\(error)"
            return text.contains(bad.message) && !text.contains("\n")
                && (text.contains("encoder.json") || text.contains("vocab.bpe"))
        }
    }
}
