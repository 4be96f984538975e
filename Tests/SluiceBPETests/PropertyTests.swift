import Foundation
import SluiceTestSupport
import Testing

@testable import SluiceBPE

/// Scalars that stress every rule: ASCII, contractions, every whitespace, letters/numbers of
/// several scripts, marks, emoji and ZWJ, controls, private use — all assigned in Unicode 16,
/// so the stdlib's (Unicode 17) regex classes agree with tiktoken's tables on them.
let alphabet: [Unicode.Scalar] = Array(
    "aZ09 '’sStTmdlrve.,!?-_\"()<|>\t\n\r\u{0B}\u{0C}\u{85}\u{A0}\u{1680}\u{2000}\u{2009}\u{200A}\u{2028}\u{2029}\u{202F}\u{205F}\u{3000}\u{180E}\u{200B}\u{FEFF}\u{1C}\u{1F}éßΣωЖж中文日本語한국ا٣๑²½Ⅻ①\u{301}\u{94D}\u{E01}👋👨‍👩‍👧🏽\u{FE0F}\u{E000}\u{10FFFD}\u{0}\u{7F}"
        .unicodeScalars)

func randomText(_ generator: inout SplitMix64, maxLength: Int = 40) -> String {
    var scalars = String.UnicodeScalarView()
    for _ in 0..<Int.random(in: 0...maxLength, using: &generator) {
        scalars.append(alphabet.randomElement(using: &generator) ?? "a")
    }
    return String(scalars)
}

@Suite("BPE properties")
struct PropertyTests {
    /// GPT-2's pattern on Unicode scalars, as an independent reference for the hand-written scanner.
    static func reference() throws -> Regex<AnyRegexOutput> {
        try Regex(#"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#).matchingSemantics(
            .unicodeScalar)
    }

    @Test("the scanner splits exactly like GPT-2's regex on 20,000 random strings")
    func scannerMatchesRegex() throws {
        let reference = try Self.reference()
        var generator = SplitMix64(state: 42)
        for _ in 0..<20_000 {
            let text = randomText(&generator)
            let expected = text.matches(of: reference).map { Array(text.utf8[$0.range]) }
            let bytes = Array(text.utf8)
            let pieces = PreTokenizer.pieces(bytes).map { Array(bytes[$0]) }
            #expect(pieces == expected, "text: \(text.unicodeScalars.map { String($0.value, radix: 16) })")
            if pieces != expected { return }
        }
    }

    /// The scanner reads ASCII letter and digit runs 8 bytes at a time; runs of every length
    /// up to three words, each ended by a byte just outside the letter and digit ranges (`@`
    /// `[` `` ` `` `{` `/` `:`), by other classes or by a multi-byte scalar that continues or
    /// ends the run, must split exactly as the regex does.
    @Test("ASCII letter and digit runs of every length split like GPT-2's regex, whatever ends them")
    func wordRunsMatchRegex() throws {
        let reference = try Self.reference()
        let runAlphabets = ["AbZzMqaz", "0918273645"]
        let ends = [
            "", " ", "a", "Z", "7", ".", "@", "[", "`", "{", "/", ":", "\u{7F}", "é", "中", "²", "\u{2000}", "’", "'s",
            "\n", "  x",
        ]
        let starts = ["", " ", "x", "1", "é", "'"]
        var checked = 0
        for alphabet in runAlphabets {
            let letters = Array(alphabet)
            for length in 0...25 {
                let run = String((0..<length).map { letters[$0 % letters.count] })
                for start in starts {
                    for end in ends {
                        let text = start + run + end + run
                        let expected = text.matches(of: reference).map { Array(text.utf8[$0.range]) }
                        let bytes = Array(text.utf8)
                        let pieces = PreTokenizer.pieces(bytes).map { Array(bytes[$0]) }
                        #expect(pieces == expected, "text: \(text.debugDescription)")
                        if pieces != expected { return }
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 2 * 26 * 6 * 21)
    }

    /// The scanner decides 64 ASCII bytes at a time from class masks when the 66 bytes from a
    /// piece start are ASCII. Long texts, mostly ASCII (every whitespace byte, runs of spaces
    /// and newlines, contractions next to every class, apostrophes in other runs), with a
    /// non-ASCII scalar now and then, must split exactly as the regex does and as `pieceEnd`
    /// alone does, wherever a block begins or ends.
    @Test("64-byte ASCII blocks split like GPT-2's regex and like the scalar scanner, on 3,000 long texts")
    func asciiBlocksMatchRegex() throws {
        let reference = try Self.reference()
        let parts = [
            "a", "Z", "q", "0", "7", " ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\u{0B}", "\u{0C}", "'",
            "'s", "'t",
            "'m", "'d", "'re", "'ve", "'ll", "'S", "'l", "'r", "'v", "'x", ".", ",", "!", "@", "[", "`", "{", "~",
            "\u{7F}",
            "\u{1F}", "\u{0}", "-", "word", " the", " of", "1999", "é", "\u{A0}", "\u{85}", "中",
        ]
        var generator = SplitMix64(state: 7)
        var blocks = 0
        for round in 0..<3_000 {
            var text = ""
            // Without non-ASCII in the first third of the rounds, so whole texts run in blocks.
            let choices = round < 1_000 ? parts.count - 4 : parts.count
            for _ in 0..<Int.random(in: 40...260, using: &generator) {
                text += parts[Int.random(in: 0..<choices, using: &generator)]
            }
            let bytes = Array(text.utf8)
            let expected = text.matches(of: reference).map {
                bytes.startIndex + text.utf8.distance(from: text.utf8.startIndex, to: $0.range.lowerBound)
            }
            let pieces = PreTokenizer.pieces(bytes)
            var scalar: [Range<Int>] = []  // `pieceEnd` alone, one scalar at a time
            bytes.withUnsafeBufferPointer { buffer in
                var start = 0
                while start < buffer.count {
                    let end = PreTokenizer.pieceEnd(buffer, from: start)
                    scalar.append(start..<end)
                    start = end
                }
            }
            #expect(pieces == scalar, "text: \(text.debugDescription)")
            #expect(pieces.map(\.lowerBound) == expected, "text: \(text.debugDescription)")
            if pieces != scalar || pieces.map(\.lowerBound) != expected { return }
            if bytes.count >= PreTokenizer.blockReach { blocks += 1 }
        }
        #expect(blocks > 2_500)
    }

    /// The ids a merge function writes for `piece` (it needs room for `piece.count` ids).
    static func merged(
        _ piece: [UInt8], _ merge: (UnsafeBufferPointer<UInt8>, UnsafeMutablePointer<TokenID>) -> Int
    ) -> [TokenID] {
        [TokenID](unsafeUninitializedCapacity: piece.count) { output, written in
            guard let base = output.baseAddress else {
                written = 0
                return
            }
            written = piece.withUnsafeBufferPointer { merge($0, base) }
        }
    }

    @Test("decode(encode(s)) == s on random and adversarial strings")
    func roundTrip() throws {
        var generator = SplitMix64(state: 7)
        for _ in 0..<5_000 {
            let text = randomText(&generator, maxLength: 200)
            #expect(try gpt2.decode(gpt2.encodeOrdinary(text)) == Array(text.utf8))
        }
    }

    @Test("a tiny shared piece cache never changes an id, on random text and invalid bytes")
    func cacheNeverChangesIDs() {
        var generator = SplitMix64(state: 2026)
        let cache = PieceCache(slotBits: 4)
        // Short alphabets make pieces repeat, so the cache is probed, hit and overwritten.
        // Pieces of 9 to 16 bytes that share their first 8 differ only in the key's second word.
        let twins = "abcdefghijklmnop".map { " xylophonez\($0)q" } + ["xylophon", "xylophonq", " xylophonezzzzz"]
        let words =
            ["the", " the", " cat", "ing", " 123", "'s", " 👋👋", " 中文", "  ", " Straße", " ΣΣΣΣΣΣΣΣΣΣΣΣΣΣΣ"] + twins
        for round in 0..<3_000 {
            var bytes: [UInt8]
            if round % 3 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
            } else if round % 3 == 1 {
                bytes = Array(randomText(&generator, maxLength: 120).utf8)
            } else {
                bytes = Array(
                    (0..<Int.random(in: 1...30, using: &generator)).map { _ in
                        words.randomElement(using: &generator) ?? ""
                    }.joined().utf8)
            }
            var plain: [TokenID] = []
            gpt2.encodeOrdinary(utf8: bytes, into: &plain)
            var cached: [TokenID] = []
            gpt2.encodeOrdinary(utf8: bytes, into: &cached, cache: cache)
            #expect(cached == plain, "bytes: \(bytes)")
            if cached != plain { return }
        }
        #expect(cache.hits > 1_000)
    }

    @Test("invalid UTF-8 bytes never trap and still round-trip")
    func invalidBytes() throws {
        var generator = SplitMix64(state: 99)
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            var ids: [TokenID] = []
            gpt2.encodeOrdinary(utf8: bytes, into: &ids)
            #expect(try gpt2.decode(ids) == bytes)
        }
    }

    @Test("the heap merge and the linear merge agree on every piece length")
    func heapAgreesWithLinear() {
        var generator = SplitMix64(state: 3)
        // Letters, digits (GPT-2 merges them into 1–3-digit tokens) and emoji, whose bytes merge
        // across scalar boundaries.
        let alphabets: [[[UInt8]]] = [
            "abcdefghijklmnopqrstuvwxyzaeiouaeiou".map { Array(String($0).utf8) },
            "0123456789".map { Array(String($0).utf8) },
            ["😀", "🎉", "👍🏽", "🇩🇪", "👨‍👩‍👧", "❤️", "🚀", "✨"].map { Array($0.utf8) },
        ]
        for alphabet in alphabets {
            for length in [2, 3, 10, 50, 127, 128, 129, 300, 1000, 5000] {
                for _ in 0..<20 {
                    var piece: [UInt8] = []
                    while piece.count < length { piece += alphabet.randomElement(using: &generator) ?? [97] }
                    piece.removeLast(piece.count - length)
                    let linear = Self.merged(piece) { gpt2.linearMerge($0, into: $1) }
                    let heap = Self.merged(piece) { gpt2.heapMerge($0, into: $1) }
                    #expect(linear == heap, "piece: \(piece)")
                }
            }
        }
    }

    /// Inputs that defeat naive merging, named so that the test log shows the name, not the
    /// megabyte of text.
    struct Pathological: CustomTestStringConvertible, Sendable {
        let name: String
        let make: @Sendable () -> String
        var testDescription: String { name }

        static let all: [Pathological] = [
            Pathological(name: "100k × one letter") { String(repeating: "a", count: 100_000) },
            Pathological(name: "1 MB without spaces") { String(repeating: "abcdefghij0123456789", count: 50_000) },
            Pathological(name: "1 MB of one digit") { String(repeating: "7", count: 1_000_000) },
            Pathological(name: "combining marks after numbers") {
                String(repeating: "1\u{301}2\u{308}\u{301}", count: 20_000)
            },
            Pathological(name: "every whitespace code point") {
                String(
                    String.UnicodeScalarView(
                        (0...0x3000).compactMap(Unicode.Scalar.init).filter(\.properties.isWhitespace))
                ).repeated(2000)
            },
            Pathological(name: "200k of one emoji") { String(repeating: "👍", count: 200_000) },
        ]
    }

    @Test("pathological inputs finish quickly and round-trip", arguments: Pathological.all)
    func pathological(_ input: Pathological) throws {
        let (name, text) = (input.name, input.make())
        // A hang guard, not a speed test: quadratic merging of these pieces takes hours, the
        // heap merge well under a second in release (speed is measured by the benchmark),
        // a few seconds in a debug build on a busy machine.
        let start = Date()
        let ids = gpt2.encodeOrdinary(text)
        #expect(Date().timeIntervalSince(start) < 60, "\(name) took \(Date().timeIntervalSince(start)) s")
        #expect(try gpt2.decode(ids) == Array(text.utf8))
    }

    @Test("every general category, one scalar each, matches the regex reference and round-trips")
    func everyCategory() throws {
        var seen = Set<String>()
        var sample = String.UnicodeScalarView()
        for value in 0...0x10FFFF {
            guard let scalar = Unicode.Scalar(value), let age = scalar.properties.age, (age.major, age.minor) <= (16, 0)
            else { continue }
            if seen.insert("\(scalar.properties.generalCategory)").inserted { sample.append(scalar) }
        }
        #expect(seen.count >= 29)
        let reference = try Self.reference()
        for scalar in sample {
            for context in ["x\(scalar)y", " \(scalar)\(scalar)1", "\(scalar) 's", "1\(scalar)"] {
                let bytes = Array(context.utf8)
                let expected = context.matches(of: reference).map { Array(context.utf8[$0.range]) }
                #expect(
                    PreTokenizer.pieces(bytes).map { Array(bytes[$0]) } == expected,
                    "U+\(String(scalar.value, radix: 16))")
                #expect(try gpt2.decode(gpt2.encodeOrdinary(context)) == bytes)
            }
        }
    }
}

extension String {
    func repeated(_ count: Int) -> String { String(repeating: self, count: count) }
}
