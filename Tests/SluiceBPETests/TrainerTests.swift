import Foundation
import SluiceBPE
import SluiceTestSupport
import Testing

@Suite("BPE training")
struct TrainerTests {
    @Test("word counts of parts, merged in any order and through the file format, equal the whole's")
    func countsAddUp() throws {
        let text = try String(
            contentsOf: Fixtures.repositoryRoot.appendingPathComponent("examples/the-verdict.txt"), encoding: .utf8)
        let documents = text.split(separator: "\n\n").map { Array($0.utf8) }
        var whole = WordCounter()
        for document in documents { whole.add(document: document) }
        var parts = [WordCounter(), WordCounter(), WordCounter()]
        for (index, document) in documents.enumerated() { parts[index % 3].add(document: document) }
        var merged = WordCounter()
        for part in parts.reversed() {
            merged.merge(try WordCounter(serialized: part.serialized(), source: "part"))
        }
        #expect(merged.counts == whole.counts)
        #expect(merged.byteCount == whole.byteCount)
        #expect(whole.counts[Array(" the".utf8)] ?? 0 > 50)
        #expect(throws: BPEError.self) {
            try WordCounter(serialized: Array(whole.serialized().dropLast()), source: "cut")
        }
    }

    @Test("training stops at the vocabulary size; ranks load as a vocabulary; ties go to the smaller ids")
    func trainsAndLoads() throws {
        var words = WordCounter()
        // "ab" and "cd" are equally frequent: the pair with the smaller ids ('a' < 'c') goes first.
        for _ in 0..<5 { words.add(document: Array("cd ab".utf8)) }
        let result = BPETrainer(vocabSize: 256 + 1 + 3, specialTokens: ["<s>"]).train(words)
        #expect(result.tokens.count == 260)
        #expect(result.tokens[0] == Array("<s>".utf8))
        #expect(result.tokens[1] == [0x21])  // '!', the first byte-level character
        let made = result.merges.map { result.tokens[$0.result] }
        #expect(made == [Array("ab".utf8), Array("cd".utf8), Array(" ab".utf8)])
        let vocabulary = try Vocabulary(tokensByRank: result.ranks)
        #expect(vocabulary.count == 259)
        #expect(result.specialTokenIDs(names: ["<s>"]) == ["<s>": 259])
        let encoder = try BPEEncoder(vocabulary: vocabulary, specialTokens: ["<s>": 259])
        let ids = encoder.encodeOrdinary("cd ab")
        #expect(ids.count == 2)  // "cd", " ab"
        #expect(try encoder.decode(ids) == Array("cd ab".utf8))
    }
}
