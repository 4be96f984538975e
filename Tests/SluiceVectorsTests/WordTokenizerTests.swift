import Foundation
import SluiceTestSupport
import SluiceWords
import Testing

@Suite(
    "The book's word tokenizer (SimpleTokenizerV2), exactly",
    .enabled(if: Fixtures.hasShared, "needs ../shared (the word tokenizer goldens), which is not beside the repository")
)
struct WordTokenizerGoldenTests {
    static func records() throws -> [[String: Any]] {
        try Fixtures.jsonLines(Fixtures.shared("golden/words/words.jsonl")).compactMap { $0 as? [String: Any] }
    }

    static func verdict() throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Fixtures.shared("corpus/the-verdict.txt")))
    }

    @Test("the vocabulary of the-verdict: 1,132 entries in the book's order")
    func vocabulary() throws {
        let record = try #require(try Self.records().first { $0["kind"] as? String == "vocab" })
        let tokenizer = WordTokenizer.buildingVocabulary(from: [try Self.verdict()])
        #expect(tokenizer.count == 1132)
        #expect(tokenizer.tokens == record["tokens"] as? [String])
    }

    @Test("encode (the whole text and every edge case), pieces and decode")
    func encodeAndDecode() throws {
        let records = try Self.records()
        let tokenizer = WordTokenizer.buildingVocabulary(from: [try Self.verdict()])
        var checked = 0
        for record in records {
            switch record["kind"] as? String {
            case "encode" where record["text_file"] != nil:
                var ids: [UInt32] = []
                tokenizer.encode(utf8: try Self.verdict(), into: &ids)
                #expect(ids.count == 4690 && ids.count == record["count"] as? Int)
                #expect(ids.map(Int.init) == record["ids"] as? [Int])
            case "encode":
                let text = try #require(record["text"] as? String)
                #expect(WordTokenizer.pieces(Array(text.utf8)) == record["pieces"] as? [String], "\(text)")
                let ids = tokenizer.encode(text)
                #expect(ids.map(Int.init) == record["ids"] as? [Int], "\(text)")
                #expect(try tokenizer.decode(ids) == record["decoded"] as? String, "\(text)")
            case "decode":
                let ids = try #require(record["ids"] as? [Int]).map { UInt32($0) }
                #expect(try tokenizer.decode(ids) == record["text"] as? String)
            default: continue
            }
            checked += 1
        }
        #expect(checked == 10)
    }
}

@Suite("Word tokenizer rules")
struct WordTokenizerRuleTests {
    @Test("Unicode whitespace splits (as Python's \\s), a single hyphen does not, -- does")
    func splitting() {
        let text = "a\u{2003}b\u{3000}c\u{1C}d\u{85}e---f"
        #expect(WordTokenizer.pieces(Array(text.utf8)) == ["a", "b", "c", "d", "e", "--", "-f"])
    }

    @Test("a vocabulary from keys appends the specials once; lower-casing looks up lower-case keys")
    func keysVocabulary() throws {
        let tokenizer = WordTokenizer(tokens: ["the", "king", "<|unk|>", "the"], lowercase: true)
        #expect(tokenizer.tokens == ["the", "king", "<|unk|>", "<|endoftext|>"])
        var unknown: [String] = []
        var ids: [UInt32] = []
        tokenizer.encode(utf8: Array("The KING Ärger".utf8), into: &ids) {
            unknown.append(String(decoding: $0, as: UTF8.self))
        }
        #expect(ids == [0, 1, 2])
        #expect(unknown == ["ärger"])
        #expect(throws: WordTokenizerError.self) { try tokenizer.decode([9]) }
    }
}
