import SluiceConfig
import SluiceIngest
import SluiceTestSupport
import Testing

/// Documents that exercise every state `TextPolicy.Stream` carries across a cut: UTF-8
/// sequences (valid, truncated, overlong), CR/LF pairs, BOMs, UTF-16 with odd lengths and
/// surrogates (paired and lone), NULs.
func awkwardDocument(_ generator: inout SplitMix64) -> [UInt8] {
    let atoms: [[UInt8]] = [
        Array("plain ascii ".utf8), Array("é".utf8), Array("中".utf8), Array("👋".utf8), [0xE4, 0xB8], [0xF0, 0x9F],
        [0xC0, 0xAF], [0xFF], [0x80], [0x0D], [0x0A], [0x0D, 0x0A], [0x00], [0xED, 0xA0, 0x80], Array(" x".utf8),
    ]
    var bytes: [UInt8] = []
    switch Int.random(in: 0..<6, using: &generator) {
    case 0: bytes = [0xEF, 0xBB, 0xBF]
    case 1: bytes = [0xFF, 0xFE]
    case 2: bytes = [0xFE, 0xFF]
    default: break
    }
    let utf16 = bytes.count == 2
    for _ in 0..<Int.random(in: 0...60, using: &generator) {
        if utf16 {
            // Code units in either order, including lone and paired surrogates.
            let units: [UInt16] = [0x0041, 0x000D, 0x000A, 0xD83D, 0xDC4B, 0xDC00, 0xD800, 0x00E9, 0x4E2D]
            let unit = units.randomElement(using: &generator) ?? 0x41
            bytes += [UInt8(unit & 0xFF), UInt8(unit >> 8)]
            if Int.random(in: 0..<20, using: &generator) == 0 { bytes.append(0x41) }  // an odd length
        } else {
            bytes += atoms.randomElement(using: &generator) ?? []
        }
    }
    return bytes
}

@Suite("Ingest: streaming a huge document")
struct StreamingTests {
    static let settingsCases: [(String, IngestSettings)] = {
        var normalize = IngestSettings()
        normalize.normalizeNewlines = true
        normalize.stripNulBytes = true
        var skip = IngestSettings()
        skip.invalidUTF8 = .skip
        var noUTF16 = IngestSettings()
        noUTF16.decodeUTF16 = false
        return [("defaults", IngestSettings()), ("normalize+strip", normalize), ("skip", skip), ("no utf16", noUTF16)]
    }()

    @Test(
        "TextPolicy.Stream gives apply's bytes, outcome and repairs on 3,000 documents cut at random",
        arguments: settingsCases.map(\.0))
    func streamEqualsApply(_ name: String) throws {
        let settings = try #require(Self.settingsCases.first { $0.0 == name }?.1)
        let policy = TextPolicy(settings: settings)
        var generator = SplitMix64(state: 7)
        for round in 0..<3000 {
            let document = awkwardDocument(&generator)
            var wholeRepairs = TextPolicy.Repairs()
            let whole = policy.apply(document, repairs: &wholeRepairs)

            var stream = TextPolicy.Stream(policy: policy)
            var streamed: [UInt8] = []
            var streamRepairs = TextPolicy.Repairs()
            var offset = 0
            while offset < document.count {
                let length = min(document.count - offset, Int.random(in: 1...7, using: &generator))
                try document[offset..<offset + length].withUnsafeBytes { piece in
                    try stream.feed(piece) { streamed += $0 }
                }
                offset += length
            }
            let outcome = try stream.finish(repairs: &streamRepairs) { streamed += $0 }
            let context = "round \(round), document \(document)"
            switch whole {
            case .text(let expected):
                #expect(outcome == .text([]), "\(context)")
                #expect(streamed == expected, "\(context)")
                #expect(stream.outputBytes == expected.count, "\(context)")
            case .rejected(let reason, _):
                guard case .rejected(let streamedReason, _) = outcome else {
                    Issue.record("apply rejected (\(reason)), the stream accepted: \(context)")
                    continue
                }
                #expect(streamedReason == reason, "\(context)")
            }
            #expect(streamRepairs == wholeRepairs, "\(context)")
        }
    }

    @Test("SafeRecut hands on every byte once, in order, in chunks that end at the cut offsets")
    func recutKeepsBytes() throws {
        var generator = SplitMix64(state: 11)
        for _ in 0..<500 {
            let document = (0..<Int.random(in: 0...400, using: &generator)).map { _ in
                UInt8.random(in: 0x61...0x64, using: &generator)
            }
            var recut = SafeRecut()
            var chunks: [[UInt8]] = []
            var sawLast = false
            // A cut after every 'a' that is not the last byte: a rule with an offset to find.
            let cutAfterA: (UnsafeBufferPointer<UInt8>) -> Int = { bytes in
                var cut = 0
                for index in 0..<max(0, bytes.count - 1) where bytes[index] == 0x61 { cut = index + 1 }
                return cut
            }
            var offset = 0
            repeat {
                let length = min(document.count - offset, Int.random(in: 0...50, using: &generator))
                let last = offset + length == document.count
                try recut.feed(Array(document[offset..<offset + length]), last: last, safeCut: cutAfterA) {
                    chunk, isLast in
                    #expect(!sawLast)
                    if !isLast { #expect(chunk.last == 0x61) }
                    chunks.append(chunk)
                    sawLast = isLast
                }
                offset += length
            } while offset < document.count
            #expect(sawLast)
            #expect(chunks.flatMap { $0 } == document)
        }
    }
}
