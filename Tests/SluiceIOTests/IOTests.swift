import Foundation
import SluiceIO
import SluiceTestSupport
import Testing

@Suite("LZ4 frames")
struct LZ4FrameTests {
    static let sizes = [0, 1, 100, 65_536, 5_000_123]

    static func sample(_ count: Int) -> [UInt8] {
        var state: UInt32 = 12345
        return (0..<count).map { index in
            state = state &* 1_103_515_245 &+ 12345
            return index % 3 == 0 ? UInt8(truncatingIfNeeded: state >> 16) : UInt8(ascii: "a") + UInt8(index % 7)
        }
    }

    @Test("round trip, and `lz4 -d` reads what LZ4FrameWriter wrote", arguments: sizes)
    func roundTrip(_ size: Int) throws {
        let directory = try TemporaryDirectory()
        let bytes = Self.sample(size)
        let path = directory.path("data.lz4")
        // Uneven writes, to cross the writer's chunking.
        let (_, sha256, byteCount) = try Self.written(bytes, to: path, options: LZ4FrameWriter.Options())
        #expect(try SHA256Hasher.hex(ofFile: path) == sha256)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == byteCount)
        #expect(try LZ4FrameReader(path: path).readAll() == bytes)
        let decoded = try Shell.run(["/usr/bin/lz4", "-dc", path])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout == bytes)
    }

    /// Writes `bytes` in uneven pieces (1, 4, 13, 40, … bytes) and finishes; returns the file
    /// and what `finish()` said of it.
    static func written(
        _ bytes: [UInt8], to path: String, options: LZ4FrameWriter.Options
    ) throws -> (file: [UInt8], sha256: String, byteCount: Int) {
        let writer = try LZ4FrameWriter(path: path, options: options)
        var offset = 0
        var step = 1
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            try writer.write(Array(bytes[offset..<end]))
            offset = end
            step = step * 3 + 1
        }
        let (sha256, byteCount) = try writer.finish()
        return (try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), sha256, byteCount)
    }

    @Test(
        "compressing in the background writes the same file byte for byte",
        arguments: [0, 1, 65_536, 65_537, 300_000, 5_000_123], [LZ4FrameWriter.Options.BlockSize.kib64, .mib4])
    func backgroundIdentical(_ size: Int, _ blockSize: LZ4FrameWriter.Options.BlockSize) throws {
        let directory = try TemporaryDirectory()
        let bytes = Self.sample(size)
        var options = LZ4FrameWriter.Options()
        options.blockSize = blockSize
        let inline = try Self.written(bytes, to: directory.path("inline.lz4"), options: options)
        options.compressInBackground = true
        let path = directory.path("background.lz4")
        let background = try Self.written(bytes, to: path, options: options)
        #expect(background.file == inline.file)
        #expect(background.sha256 == inline.sha256)
        #expect(try SHA256Hasher.hex(ofFile: path) == background.sha256)
        #expect(try LZ4FrameReader(path: path).readAll() == bytes)
    }

    @Test("a background writer dropped with blocks in flight leaves no file and no temporary")
    func backgroundAbandoned() throws {
        let directory = try TemporaryDirectory()
        var options = LZ4FrameWriter.Options()
        options.blockSize = .kib64
        options.compressInBackground = true
        do {
            let writer = try LZ4FrameWriter(path: directory.path("dropped.lz4"), options: options)
            try writer.write(Self.sample(1_000_000))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).isEmpty)
    }

    @Test("a truncated or corrupted frame is an error with the offset, never a crash")
    func damage() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("data.lz4")
        let writer = try LZ4FrameWriter(path: path)
        try writer.write(Self.sample(300_000))
        _ = try writer.finish()
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        try directory.write("cut.lz4", Array(good[..<(good.count / 2)]))
        #expect {
            try LZ4FrameReader(path: directory.path("cut.lz4")).readAll()
        } throws: { error in
            (error as? IOError)?.code == .truncated && "\(error)".contains("cut.lz4")
        }
        var flipped = good
        flipped[good.count - 2] ^= 0xFF  // inside the content checksum
        try directory.write("flipped.lz4", flipped)
        #expect {
            try LZ4FrameReader(path: directory.path("flipped.lz4")).readAll()
        } throws: { error in
            (error as? IOError)?.code == .decompression && "\(error)".contains("at byte")
        }
    }
}

@Suite("AtomicFileWriter")
struct AtomicFileWriterTests {
    @Test("nothing appears under the final name before commit; an abandoned writer leaves nothing")
    func atomicity() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("final.bin")
        do {
            let writer = try AtomicFileWriter(path: path)
            try writer.write(Array(repeating: 7, count: 1000))
            #expect(!FileManager.default.fileExists(atPath: path))
            try writer.commit()
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == 1000)
        do {
            let abandoned = try AtomicFileWriter(path: directory.path("never.bin"))
            try abandoned.write([1, 2, 3])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["final.bin"])
    }

    @Test("a missing directory is a clear error naming the path")
    func missingDirectory() {
        #expect {
            try AtomicFileWriter(path: "/nonexistent-dir/file")
        } throws: { error in
            "\(error)".contains("/nonexistent-dir/file") && "\(error)".contains("No such file")
        }
    }
}

@Suite("JSON parser")
struct JSONParserTests {
    @Test("values keep their line and column")
    func positions() throws {
        let node = try JSONNode.parse(Array("{\n  \"a\": [1,\n    {\"b\": \"x\"}]\n}".utf8))
        let b = try #require(node["a"].flatMap { if case .array(let items) = $0.value { items[1]["b"] } else { nil } })
        #expect((b.line, b.column) == (3, 11))
        #expect(b.string == "x")
    }

    @Test(
        "strict: duplicate keys, trailing commas, comments, NaN, leading zeros are errors with positions",
        arguments: [
            ("{\"a\": 1, \"a\": 2}", "duplicate key"), ("[1, 2,]", "trailing comma"), ("{\"a\": 1,}", "trailing comma"),
            ("// c\n{}", "expected a value"), ("[NaN]", "expected a value"), ("[01]", "leading zeros"),
            ("{\"a\" 1}", "expected ':'"),
            ("\"\\x\"", "invalid escape"), ("[1] 2", "after the JSON value"), ("\"a\nb\"", "control character"),
        ])
    func strictness(_ text: String, _ expected: String) {
        #expect {
            try JSONNode.parse(Array(text.utf8))
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".hasPrefix("line ")
        }
    }

    @Test("escapes and surrogate pairs decode; lone surrogates become U+FFFD and are counted")
    func escapes() throws {
        let (node, repairs) = try JSONNode.parseCountingRepairs(
            Array(#"["\u00e9\ud83d\ude00", "\udc00", "\ud800x"]"#.utf8)[...])
        guard case .array(let items) = node.value else {
            Issue.record("not an array")
            return
        }
        #expect(items.map { $0.string } == ["é😀", "\u{FFFD}", "\u{FFFD}x"])
        #expect(repairs == 2)
    }

    @Test("serialization round-trips through the parser")
    func roundTrip() throws {
        let text = #"{"b": [1, -2.5, true, null, "q\"\n\u0001é"], "a": {}}"#
        let node = try JSONNode.parse(Array(text.utf8))
        #expect(try JSONNode.parse(Array(node.serialized().utf8)) == node)
        #expect(try JSONNode.parse(Array(node.serialized(pretty: false).utf8)) == node)
    }
    /// torch seeds reach 2^64 − 1, past Int64: those literals stay exact; larger ones are numbers.
    @Test("integers: Int64, then UInt64 kept exact, then Double")
    func integerRanges() throws {
        let node = try JSONNode.parse(
            Array(
                ("[-9223372036854775808, 9223372036854775807, 9223372036854775808, "
                    + "18446744073709551615, 18446744073709551616]").utf8))
        guard case .array(let items) = node.value else {
            Issue.record("not an array")
            return
        }
        #expect(
            items.map(\.value) == [
                .integer(.min), .integer(.max), .unsignedInteger(1 << 63), .unsignedInteger(.max),
                .number(18_446_744_073_709_551_616),
            ])
        #expect(items[3].typeName == "integer" && items[3].integer == nil)
        #expect(node.serialized(pretty: false).contains(",9223372036854775808,18446744073709551615,"))
        #expect(try JSONNode.parse(Array(node.serialized().utf8)) == node)
    }
}
