import Foundation
import SluiceBPE
import SluiceTestSupport
import Testing

@Suite("Vocabulary loading")
struct VocabularyTests {
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// A valid rank file: the 256 bytes, then a few merges.
    static func rankFile(extra: [String] = []) -> String {
        var lines = (0..<256).map { "\(base64([UInt8($0)])) \($0)" }
        lines.append("\(base64(Array("ab".utf8))) 256")
        lines.append(contentsOf: extra)
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("a valid rank file loads and encodes by its merges")
    func small() throws {
        let vocabulary = try Vocabulary(tiktokenData: Array(Self.rankFile().utf8))
        #expect(vocabulary.count == 257)
        let encoder = try BPEEncoder(vocabulary: vocabulary)
        #expect(encoder.encodeOrdinary("abab") == [256, 256])
    }

    @Test(
        "malformed rank files name the line and the problem",
        arguments: [
            ("not-base64!! 257", ":258: the token is not valid base64"),
            ("\(base64(Array("ab".utf8))) 257", "has two ranks, 256 and 257"),
            ("\(base64(Array("cd".utf8))) 256", ":258: rank 256 was already given on line 257"),
            ("\(base64(Array("cd".utf8))) 300", "rank 257 is missing"),
            ("\(base64(Array("cd".utf8)))", ":258: expected \"BASE64TOKEN RANK\""),
            ("\(base64(Array("cd".utf8))) -4", ":258: the rank \"-4\" is not a non-negative integer"),
        ])
    func malformed(_ extra: String, _ expected: String) {
        #expect {
            try Vocabulary(tiktokenData: Array(Self.rankFile(extra: [extra]).utf8), source: "bad.tiktoken")
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".hasPrefix("bad.tiktoken")
        }
    }

    @Test("ranks in any order, CRLF line ends, runs of spaces and blank lines load the same vocabulary")
    func layoutVariants() throws {
        let plain = try Vocabulary(
            tiktokenData: Array(Self.rankFile(extra: ["\(Self.base64(Array("abab".utf8))) 257"]).utf8))
        var lines = (0..<256).map { "\(Self.base64([UInt8($0)])) \($0)" }
        lines += ["\(Self.base64(Array("ab".utf8))) 256", "\(Self.base64(Array("abab".utf8))) 257"]
        var generator = SplitMix64(state: 11)
        lines.shuffle(using: &generator)
        let messy = lines.enumerated().map { index, line in
            (index % 3 == 0 ? "  " : "") + line.replacingOccurrences(of: " ", with: index % 2 == 0 ? "   " : " ")
                + (index % 5 == 0 ? "\r\n  \n" : "\n")
        }.joined()
        let shuffled = try Vocabulary(tiktokenData: Array(messy.utf8))
        #expect(shuffled.tiktokenFile() == plain.tiktokenFile())
        #expect(try BPEEncoder(vocabulary: shuffled).encodeOrdinary("ababab") == [257, 256])
    }

    @Test(
        "rank fields the way Int reads them: a sign is allowed, out-of-range and extra fields are not",
        arguments: [
            ("+257", nil), ("-0", ":258: rank 0 was already given on line 1"),
            ("2147483648", "the rank \"2147483648\" is not"),
            ("99999999999999999999999", "is not a non-negative integer"), ("25a", "the rank \"25a\" is not"),
            ("257 x", "got 3 field(s)"), ("+", "the rank \"+\" is not"),
            ("3\u{7F}6", "the rank \"3\\x7F6\" is not"), ("2\u{1}", "the rank \"2\\x01\" is not"),
        ] as [(String, String?)])
    func rankFields(_ rank: String, _ expected: String?) throws {
        let text = Array(Self.rankFile(extra: ["\(Self.base64(Array("cd".utf8))) \(rank)"]).utf8)
        if let expected {
            #expect(throws: BPEError.self) { try Vocabulary(tiktokenData: text) }
            #expect { try Vocabulary(tiktokenData: text) } throws: { "\($0)".contains(expected) }
        } else {
            #expect(try Vocabulary(tiktokenData: text).count == 258)
        }
    }

    @Test(
        "GPT-2's encoder.json given as a rank file says to add its merges", arguments: ["{\"!\": 0}", "\u{FEFF}\n  {"])
    func encoderJSONAlone(_ text: String) {
        #expect {
            try Vocabulary(tiktokenData: Array(text.utf8), source: "encoder.json")
        } throws: { error in
            "\(error)".hasPrefix("encoder.json:1: this is JSON, not a tiktoken rank file")
                && "\(error)".contains("add merges")
        }
    }

    @Test("a rank file without every single byte is refused")
    func missingByte() {
        let text = (1..<256).map { "\(Self.base64([UInt8($0)])) \($0 - 1)" }.joined(separator: "\n")
        #expect {
            try Vocabulary(tiktokenData: Array(text.utf8))
        } throws: { error in
            "\(error)".contains("no token for the single byte 0x0")
        }
    }

    @Test("GPT-2's encoder.json + vocab.bpe load to exactly tiktoken's r50k ranks")
    func encoderJSONEqualsRankFile() throws {
        let directory = Fixtures.repositoryRoot.appendingPathComponent("vocab/gpt2").path
        try #require(
            FileManager.default.fileExists(atPath: directory + "/encoder.json"),
            "run scripts/setup.sh (it fetches vocab/gpt2)")
        let (vocabulary, specials) = try Vocabulary.load(
            encoderJSON: directory + "/encoder.json", vocabBPE: directory + "/vocab.bpe")
        #expect(specials == ["<|endoftext|>": 50256])
        #expect(vocabulary.count == gpt2.vocabulary.count)
        for id in 0..<TokenID(vocabulary.count) where vocabulary.bytes(of: id) != gpt2.vocabulary.bytes(of: id) {
            Issue.record("rank \(id) differs")
            return
        }
    }

    @Test("special tokens: disallowed text is an error; allowed ones become ids")
    func specialPolicies() throws {
        #expect {
            try gpt2.encode("a <|endoftext|>")
        } throws: { error in
            "\(error)".contains("special token \"<|endoftext|>\" at byte 2")
        }
        #expect(
            try gpt2.encode("a <|endoftext|>b", policy: .allow(["<|endoftext|>"])) == gpt2.encodeOrdinary("a ") + [
                50256
            ] + gpt2.encodeOrdinary("b"))
        #expect(try gpt2.encode("<|endoftext|>", policy: .allowOnly([])) == gpt2.encodeOrdinary("<|endoftext|>"))
        #expect(throws: BPEError.self) { try BPEEncoder(vocabulary: gpt2.vocabulary, specialTokens: ["<|x|>": 100]) }
    }
}
