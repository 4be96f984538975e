import Foundation
import SluiceBPE
import SluiceTestSupport
import Testing

/// One encoder for the suite: loading GPT-2's ranks takes a few hundred milliseconds. From
/// `../shared`'s rank file when it is there, else from the repository's `vocab/gpt2`.
let gpt2: BPEEncoder = {
    do {
        let vocabulary =
            Fixtures.hasShared
            ? try Vocabulary.load(tiktokenFile: Fixtures.gpt2RankFile)
            : try Vocabulary.load(encoderJSON: Fixtures.gpt2Encoder, vocabBPE: Fixtures.gpt2Merges).vocabulary
        return try BPEEncoder(vocabulary: vocabulary, specialTokens: ["<|endoftext|>": 50256])
    } catch {
        fatalError("cannot load GPT-2's vocabulary (run scripts/setup.sh, which fetches vocab/gpt2): \(error)")
    }
}()

struct GoldenCase: CustomTestStringConvertible, Sendable {
    let line: Int
    let category: String
    let text: String
    let ids: [TokenID]
    var testDescription: String { "line \(line) [\(category)]" }

    static let all: [GoldenCase] = {
        let url = Fixtures.shared("golden/gpt2-tokens.jsonl")
        guard let records = try? Fixtures.jsonLines(url) else { return [] }
        return records.enumerated().compactMap { index, record in
            guard let object = record as? [String: Any], let text = object["text"] as? String,
                let ids = object["ids"] as? [Int], let category = object["case"] as? String
            else { return nil }
            return GoldenCase(line: index + 1, category: category, text: text, ids: ids.map { TokenID($0) })
        }
    }()
}

@Suite(
    "tiktoken goldens",
    .enabled(if: Fixtures.hasShared, "needs ../shared (the tiktoken goldens), which is not beside the repository"))
struct GoldenTokenTests {
    @Test("the golden file is present and complete")
    func goldenFileLoads() {
        #expect(GoldenCase.all.count == 383, "expected 383 cases in ../shared/golden/gpt2-tokens.jsonl")
    }

    @Test("encode_ordinary matches tiktoken", arguments: GoldenCase.all)
    func matchesTiktoken(_ golden: GoldenCase) {
        #expect(gpt2.encodeOrdinary(golden.text) == golden.ids)
    }

    @Test("decode gives the text back", arguments: GoldenCase.all)
    func decodesBack(_ golden: GoldenCase) throws {
        #expect(try gpt2.decode(golden.ids) == Array(golden.text.utf8))
    }

    @Test("the-verdict gives the book's 5,145 ids")
    func verdict() throws {
        let text = try String(contentsOf: Fixtures.shared("corpus/the-verdict.txt"), encoding: .utf8)
        let golden = try #require(
            try Fixtures.json(Fixtures.shared("golden/torch/verdict_tokens.json")) as? [String: Any])
        let ids = try #require(golden["token_ids"] as? [Int])
        let encoded = gpt2.encodeOrdinary(text)
        #expect(encoded.count == 5145)
        #expect(encoded == ids.map { TokenID($0) })
    }

    @Test("a piece cache kept across every case gives tiktoken's ids, cold and warm, roomy and evicting")
    func cachedMatchesTiktoken() throws {
        let text = try String(contentsOf: Fixtures.shared("corpus/the-verdict.txt"), encoding: .utf8)
        let golden = try #require(
            try Fixtures.json(Fixtures.shared("golden/torch/verdict_tokens.json")) as? [String: Any])
        let verdictIDs = try #require(golden["token_ids"] as? [Int]).map { TokenID($0) }
        // 16 slots: almost every store replaces another piece, so keys that share a slot are
        // told apart on every probe. 2^16 slots: the default, where the second pass mostly hits.
        for cache in [PieceCache(slotBits: 4), PieceCache()] {
            for pass in 0..<2 {
                for golden in GoldenCase.all {
                    var ids: [TokenID] = []
                    gpt2.encodeOrdinary(utf8: Array(golden.text.utf8), into: &ids, cache: cache)
                    #expect(ids == golden.ids, "\(golden.testDescription), pass \(pass), \(cache.slotCount) slots")
                }
                var ids: [TokenID] = []
                gpt2.encodeOrdinary(utf8: Array(text.utf8), into: &ids, cache: cache)
                #expect(ids == verdictIDs, "the-verdict, pass \(pass), \(cache.slotCount) slots")
            }
            #expect(cache.hits > 0 && cache.hits < cache.lookups)
        }
    }
}
