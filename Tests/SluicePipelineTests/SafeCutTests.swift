import SluiceBPE
import SluiceIngest
import SluicePipeline
import SluiceTestSupport
import SluiceWords
import Testing

/// Text whose pre-tokenizer pieces are long and varied near any cut: runs of spaces and
/// newlines, contractions, digits, punctuation, letters of several scripts, invalid bytes.
private func text(_ generator: inout SplitMix64, length: Int) -> [UInt8] {
    let atoms: [[UInt8]] =
        [
            "the", " quick", "  ", "    ", "\n", "\n\n", " \n ", "'s", "'ll", "'RE", "123", "4567", " 89", "!!", "...",
            " --", "é", "ßΣ", " 中文", "👋🏽", "\t", "\r\n", "a", "x", " ", "don't", " well-known", "\u{A0}", "\u{3000}",
        ].map { Array($0.utf8) } + [[0xFF], [0xE4, 0xB8]]
    var bytes: [UInt8] = []
    while bytes.count < length { bytes += atoms.randomElement(using: &generator) ?? [] }
    return bytes
}

@Suite("Safe cuts: a huge document tokenized in chunks gives the ids of the whole")
struct SafeCutTests {
    static let gpt2: BPEEncoder? = {
        let vocabulary =
            Fixtures.hasShared
            ? try? Vocabulary.load(tiktokenFile: Fixtures.gpt2RankFile)
            : try? Vocabulary.load(encoderJSON: Fixtures.gpt2Encoder, vocabBPE: Fixtures.gpt2Merges).vocabulary
        return vocabulary.flatMap { try? BPEEncoder(vocabulary: $0) }
    }()

    /// Ids of `document` fed to SafeRecut in random pieces, each chunk encoded alone.
    private static func chunkedIds(
        _ document: [UInt8], tokenizer: RunTokenizer, generator: inout SplitMix64, maxPiece: Int
    ) throws -> (ids: [TokenID], chunks: Int) {
        var recut = SafeRecut()
        var ids: [TokenID] = []
        var chunks = 0
        var offset = 0
        repeat {
            let length = min(document.count - offset, Int.random(in: 1...maxPiece, using: &generator))
            let last = offset + length == document.count
            try recut.feed(Array(document[offset..<offset + length]), last: last, safeCut: tokenizer.safeCut) {
                chunk, _ in
                tokenizer.encode(document: chunk, into: &ids) { _ in }
                chunks += 1
            }
            offset += length
        } while offset < document.count
        return (ids, chunks)
    }

    @Test(
        "GPT-2 BPE: 400 documents cut by PreTokenizer.safeCut at random piece sizes",
        .enabled(if: gpt2 != nil, "GPT-2's vocabulary is missing (run scripts/setup.sh)"))
    func bpeChunksEqualWhole() throws {
        let encoder = try #require(Self.gpt2)
        let tokenizer = RunTokenizer.bpe(encoder)
        var generator = SplitMix64(state: 3)
        var totalChunks = 0
        for round in 0..<400 {
            let document = text(&generator, length: Int.random(in: 1...3000, using: &generator))
            var whole: [TokenID] = []
            encoder.encodeOrdinary(utf8: document, into: &whole)
            let (ids, chunks) = try Self.chunkedIds(document, tokenizer: tokenizer, generator: &generator, maxPiece: 40)
            totalChunks += chunks
            #expect(ids == whole, "round \(round): \(String(decoding: document, as: UTF8.self).debugDescription)")
        }
        #expect(totalChunks > 4000, "the documents were hardly cut (\(totalChunks) chunks): the test proves nothing")
    }

    @Test("word level: 400 documents cut after whitespace give the ids of the whole")
    func wordChunksEqualWhole() throws {
        var generator = SplitMix64(state: 5)
        let tokenizer = WordTokenizer(tokens: ["the", "quick", "'s", "123", "!!", "...", "--", "é", ",", "."])
        let run = RunTokenizer.words(tokenizer)
        var totalChunks = 0
        for round in 0..<400 {
            let document = text(&generator, length: Int.random(in: 1...3000, using: &generator))
            var whole: [TokenID] = []
            run.encode(document: document, into: &whole) { _ in }
            let (ids, chunks) = try Self.chunkedIds(document, tokenizer: run, generator: &generator, maxPiece: 40)
            totalChunks += chunks
            #expect(ids == whole, "round \(round)")
        }
        #expect(totalChunks > 4000, "the documents were hardly cut (\(totalChunks) chunks)")
    }
}
