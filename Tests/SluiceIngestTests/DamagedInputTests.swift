import Foundation
import SluiceConfig
import SluiceIngest
import SluiceTestSupport
import Testing

/// Forty members of distinct, compressible-but-not-trivial text: `m00.txt` … `m39.txt`.
func makeMembers(in directory: TemporaryDirectory, count: Int = 40, words: Int = 400) throws -> [String] {
    var documents: [String] = []
    for index in 0..<count {
        var text = ""
        var state = UInt64(index + 1)
        for _ in 0..<words {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            text += "word\(state >> 52) "
        }
        text += "end of member \(index)\n"
        try directory.write(String(format: "src/m%02d.txt", index), text)
        documents.append(text)
    }
    return documents
}

/// Offset and size of a zip member's data, from its local header (signature, fixed 30 bytes,
/// name, extra field); the sizes are in the local header because `zip` writes to a file.
func zipMemberData(_ bytes: [UInt8], name: String) throws -> Range<Int> {
    let nameBytes = Array(name.utf8)
    func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
    var index = 0
    while index + 30 < bytes.count {
        if bytes[index..<index + 4] == [0x50, 0x4B, 0x03, 0x04] {
            let nameLength = u16(index + 26)
            let extraLength = u16(index + 28)
            if Array(bytes[(index + 30)..<(index + 30 + nameLength)]) == nameBytes {
                let start = index + 30 + nameLength + extraLength
                return start..<(start + u32(index + 18))
            }
        }
        index += 1
    }
    throw CocoaError(.fileReadCorruptFile)
}

@Suite("Ingest: damaged inputs built at test time")
struct DamagedInputTests {
    @Test(
        "a zip with a bad member in the middle keeps the other 39, deflated or stored", arguments: ["deflate", "store"])
    func badMemberInZip(_ method: String) throws {
        let directory = try TemporaryDirectory()
        let documents = try makeMembers(in: directory)
        let level = method == "store" ? "-0" : "-6"
        try Shell.must("cd src && zip -q -X \(level) ../m.zip m*.txt", in: directory.url.path)
        var bytes = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("m.zip")))
        let data = try zipMemberData(bytes, name: "m20.txt")
        for index in (data.lowerBound + data.count / 2)..<(data.lowerBound + data.count / 2 + 16) {
            bytes[index] ^= 0xA5
        }
        try directory.write("m.zip", bytes)

        let (read, report) = try ingest([directory.path("m.zip")])
        var expected = documents
        expected.remove(at: 20)
        #expect(read == expected)
        let reason = method == "store" ? ["crc_mismatch"] : ["corrupt_member", "crc_mismatch"]
        #expect(report.problems.count == 1)
        #expect(reason.contains(report.problems.first?.reason ?? ""), "\(report.problems)")
        #expect(report.problems.first?.member == "m20.txt")
        #expect(report.partialInputs.count == 1)
        #expect(report.entries == 40)
        #expect(report.entries == report.documents + report.skippedCount + report.directories)
    }

    @Test("an encrypted zip member is skipped as encrypted; the members around it are read")
    func encryptedMember() throws {
        let directory = try TemporaryDirectory()
        try makeTextTree(in: directory)
        try directory.write("src/secret.txt", "nobody reads this\n")
        try Shell.must(
            "cd src && zip -q -X ../e.zip a.txt && zip -q -X -P hunter2 ../e.zip secret.txt && zip -q -X ../e.zip c.md",
            in: directory.url.path)
        let (documents, report) = try ingest([directory.path("e.zip")])
        #expect(documents == ["alpha document\n", "gamma document\n"])
        #expect(report.skipped["encrypted"]?.count == 1)
        #expect(report.problems.first?.member == "secret.txt")
        #expect(report.problems.first?.message.contains("re-download") == false)
        #expect(report.entries == 3)
    }

    /// A truncated copy of `name` keeps whole members before the cut, names what is lost and
    /// marks the input partial.
    @Test(
        "a truncated archive keeps every member before the cut and marks the input partial",
        arguments: ["t.tar.gz", "t.tar.zst", "t.zip"])
    func truncatedArchives(_ name: String) throws {
        let directory = try TemporaryDirectory()
        // Enough data that the cut falls well past libarchive's first 64 KiB output block.
        let documents = try makeMembers(in: directory, count: 10, words: 6000)
        let command =
            switch name {
            case "t.tar.gz": "tar -czf t.tar.gz -C src ."
            case "t.tar.zst": "tar -cf - -C src . | zstd -q -o t.tar.zst"
            default: "cd src && zip -q -X ../t.zip m*.txt"
            }
        try Shell.must(
            command.replacingOccurrences(of: "-C src .", with: "-C src \(memberList(10))"), in: directory.url.path)
        let whole = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent(name)))
        try directory.write("cut-\(name)", Array(whole[..<(whole.count * 55 / 100)]))

        let (read, report) = try ingest([directory.path("cut-\(name)")])
        #expect(!read.isEmpty && read.count < 10, "\(read.count) documents")
        #expect(read == Array(documents.prefix(read.count)), "a document was changed or reordered")
        let partial = try #require(report.partialInputs.first)
        #expect(partial.file.hasSuffix("cut-\(name)"))
        #expect(report.problems.contains { $0.offset != nil })
        #expect(report.entries == report.documents + report.skippedCount + report.directories)
    }

    @Test(
        "a truncated .jsonl.gz/.xz/.zst keeps every complete line its own tool decodes before the cut, and names the cut line",
        arguments: [("gzip -9", "gz", "gzip -dc"), ("xz -9", "xz", "xz -dc"), ("zstd -q -19", "zst", "zstd -q -dc")])
    func truncatedJSONLines(compress: String, suffix: String, decompress: String) throws {
        let directory = try TemporaryDirectory()
        var lines = ""
        for index in 0..<30000 {
            lines += "{\"text\": \"record \(index) \(String(repeating: "filler ", count: index % 17))\"}\n"
        }
        try directory.write("r.jsonl", lines)
        try Shell.must("\(compress) -c r.jsonl > r.jsonl.\(suffix)", in: directory.url.path)
        let whole = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("r.jsonl.\(suffix)")))
        try directory.write("cut.jsonl.\(suffix)", Array(whole[..<(whole.count / 2)]))
        // The reference: every complete line of what the format's own tool decodes from the cut file.
        let decodable = try Shell.run("\(decompress) cut.jsonl.\(suffix) 2>/dev/null", in: directory.url.path).stdout
        let completeLines = decodable.filter { $0 == 0x0A }.count

        let (read, report) = try ingest([directory.path("cut.jsonl.\(suffix)")])
        #expect(read.count == completeLines && completeLines > 100 && completeLines < 30000, "\(completeLines)")
        for (index, document) in read.enumerated() {
            #expect(document.hasPrefix("record \(index) "), "line \(index + 1)")
        }
        let problem = try #require(report.problems.first)
        #expect(problem.line == read.count + 1, "\(problem)")
        #expect(
            problem.message.contains("\(read.count)") && problem.message.contains("truncated"), "\(problem.message)")
        #expect(report.partialInputs.count == 1)
        #expect(report.entries == report.documents + report.skippedCount)
    }

    @Test(
        "gzip, xz, zstd files: every member is read; zero padding is nothing, other trailing bytes are unread_remainder; a bad checksum drops the document whole",
        arguments: [
            // (tool, suffix, the byte to flip: from the end, or 0 for the middle, reason)
            ("gzip", "gz", 8, "crc_mismatch"),  // the trailer's CRC-32
            ("xz", "xz", 0, "corrupt_member"),  // liblzma does not tell a bad check from bad data
            ("zstd -q", "zst", 2, "crc_mismatch"),  // the frame's content checksum
        ])
    func compressedMembers(tool: String, suffix: String, flipFromEnd: Int, reason: String) throws {
        let directory = try TemporaryDirectory()
        try directory.write("a.jsonl", "{\"text\": \"first member\"}\n")
        try directory.write("b.jsonl", "{\"text\": \"second member\"}\n")
        let text = String(repeating: "one document, checked by its checksum. ", count: 500)
        try directory.write("doc.txt", text)
        try Shell.must(
            "\(tool) -c a.jsonl > ab.jsonl.\(suffix) && \(tool) -c b.jsonl >> ab.jsonl.\(suffix) && \(tool) -c doc.txt > doc.txt.\(suffix)",
            in: directory.url.path)
        let members = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("ab.jsonl.\(suffix)")))
        try directory.write("padded.jsonl.\(suffix)", members + [UInt8](repeating: 0, count: 70000))
        try directory.write("trailing.jsonl.\(suffix)", members + Array("not compressed at all".utf8))
        let good = try ingest([directory.path("doc.txt.\(suffix)")])
        #expect(good.documents == [text] && good.report.problems.isEmpty)

        let (documents, report) = try ingest([
            directory.path("ab.jsonl.\(suffix)"), directory.path("padded.jsonl.\(suffix)"),
            directory.path("trailing.jsonl.\(suffix)"),
        ])
        #expect(documents == Array(repeating: ["first member", "second member"], count: 3).flatMap { $0 })
        #expect(report.problems.map(\.reason) == ["unread_remainder"], "\(report.problems)")
        #expect(report.problems.first?.offset == members.count)
        #expect(
            report.partialInputs.map { URL(fileURLWithPath: $0.file).lastPathComponent } == [
                "trailing.jsonl.\(suffix)"
            ])
        #expect(report.entries == report.documents + report.skippedCount)

        var doc = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("doc.txt.\(suffix)")))
        doc[flipFromEnd == 0 ? doc.count / 2 : doc.count - flipFromEnd] ^= 0xFF
        try directory.write("doc.txt.\(suffix)", doc)
        let damaged = try ingest([directory.path("ab.jsonl.\(suffix)"), directory.path("doc.txt.\(suffix)")])
        #expect(damaged.documents == ["first member", "second member"])
        #expect(damaged.report.problems.map(\.reason) == [reason], "\(damaged.report.problems)")
        #expect(damaged.report.skipped[reason]?.count == 1)
        #expect(
            damaged.report.partialInputs.map { URL(fileURLWithPath: $0.file).lastPathComponent } == [
                "doc.txt.\(suffix)"
            ])
        #expect(damaged.report.entries == damaged.report.documents + damaged.report.skippedCount)
    }

    @Test("binaries under text names are skipped as binary; gzip under a .txt name is opened")
    func binariesUnderTextNames() throws {
        let directory = try TemporaryDirectory()
        try Shell.must("cp /bin/ls ls.txt", in: directory.url.path)
        // A PNG: signature, then an IHDR chunk of a 1x1 image.
        let png: [UInt8] =
            [
                0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0,
                0, 1, 8, 6, 0, 0, 0,
            ]
            + [0x1F, 0x15, 0xC4, 0x89]
        try directory.write("image.md", png)
        try directory.write("sqlite.txt", Array("SQLite format 3\u{0}".utf8) + [UInt8](repeating: 0, count: 4080))
        try directory.write("hidden-gzip.txt", "placeholder")
        try directory.write("plain.txt", "gzip body text\n")
        try Shell.must("gzip -c plain.txt > hidden-gzip.txt && rm plain.txt", in: directory.url.path)
        // Text with a few NULs and a few invalid bytes stays text.
        try directory.write(
            "mostly.txt", Array("text with a NUL ".utf8) + [0] + Array(" and a bad byte ".utf8) + [0xFF, 0x0A])

        let (documents, report) = try ingest([directory.url.path])
        #expect(documents == ["gzip body text\n", "text with a NUL \u{0} and a bad byte \u{FFFD}\n"])
        #expect(report.skipped["binary"]?.count == 3)
        let files = report.problems.filter { $0.reason == "binary" }.map {
            URL(fileURLWithPath: $0.file).lastPathComponent
        }
        #expect(files.sorted() == ["image.md", "ls.txt", "sqlite.txt"])
        #expect(report.repairsByFile.map { URL(fileURLWithPath: $0.file).lastPathComponent } == ["mostly.txt"])
    }

    @Test("NFC and NFD twins are different files: four names, four documents")
    func normalizationTwins() throws {
        let directory = try TemporaryDirectory()
        // café in NFC (c3 a9) and NFD (65 cc 81); Å in NFC (c3 85) and NFD (41 cc 8a).
        try Shell.must(
            """
            mkdir twins && cd twins && printf 'nfc cafe\\n' > "$(printf 'caf\\303\\251.txt')" && \
            printf 'nfd cafe, longer\\n' > "$(printf 'cafe\\314\\201.txt')" && \
            printf 'nfc A\\n' > "$(printf '\\303\\205.txt')" && printf 'nfd A, longer\\n' > "$(printf 'A\\314\\212.txt')"
            """, in: directory.url.path)
        let files = try InputResolver.expand([directory.path("twins")])
        #expect(files.count == 4)
        let (documents, report) = try ingest([directory.path("twins")])
        // Byte order of the names: "A\xcc\x8a" < "cafe\xcc\x81" < "caf\xc3\xa9" < "\xc3\x85".
        #expect(documents == ["nfd A, longer\n", "nfd cafe, longer\n", "nfc cafe\n", "nfc A\n"])
        #expect(report.inputFiles == 4)
    }

    @Test("hidden files are skipped and counted in folders and archives alike, or read with hidden_files read")
    func hiddenFiles() throws {
        let directory = try TemporaryDirectory()
        try directory.write("src/visible.txt", "visible\n")
        try directory.write("src/.hidden.txt", "hidden file\n")
        try directory.write("src/.git/config", "hidden folder\n")
        try Shell.must("tar -cf h.tar -C src visible.txt .hidden.txt .git/config", in: directory.url.path)

        let (folder, folderReport) = try ingest([directory.path("src")])
        #expect(folder == ["visible\n"])
        #expect(folderReport.skipped["hidden_file"]?.count == 2)
        let (archive, archiveReport) = try ingest([directory.path("h.tar")])
        #expect(archive == ["visible\n"])
        #expect(archiveReport.skipped["hidden_file"]?.count == 2)
        #expect(
            archiveReport.entries == archiveReport.documents + archiveReport.skippedCount + archiveReport.directories)

        var read = IngestSettings()
        read.skipHiddenFiles = false
        let all = try ingest([directory.path("src")], settings: read)
        #expect(all.documents.sorted() == ["hidden file\n", "hidden folder\n", "visible\n"], "\(all.report.problems)")
        #expect(
            try ingest([directory.path("h.tar")], settings: read).documents == [
                "visible\n", "hidden file\n", "hidden folder\n",
            ])
    }

    @Test(
        "20 GiB zero bombs (gzip, zstd, xz) stop at once: binary, or the ratio limit with binary keep",
        arguments: ["gz", "zst", "xz"])
    func zeroBombs(_ suffix: String) throws {
        let directory = try TemporaryDirectory()
        // One compressed GiB of zeros, repeated: concatenated members are one valid stream.
        let one =
            switch suffix {
            case "gz": "gzip -9"
            case "zst": "zstd -q -1"
            default: "xz -0 -T1"
            }
        try Shell.must(
            "head -c 1073741824 /dev/zero | \(one) > one && for i in $(seq 20); do cat one; done > bomb.txt.\(suffix) && rm one",
            in: directory.url.path)
        let (documents, report) = try ingest([directory.path("bomb.txt.\(suffix)")])
        #expect(documents.isEmpty)
        #expect(report.skipped["binary"]?.count == 1)
        var keep = IngestSettings()
        keep.skipBinary = false
        let (kept, limited) = try ingest([directory.path("bomb.txt.\(suffix)")], settings: keep)
        #expect(kept.isEmpty)
        #expect(limited.skipped["decompression_limit"]?.count == 1)
        #expect(limited.problems.first?.message.contains("max_compression_ratio") == true)
        #expect(limited.partialInputs.count == 1)
    }
}

func memberList(_ count: Int) -> String {
    (0..<count).map { String(format: "m%02d.txt", $0) }.joined(separator: " ")
}
