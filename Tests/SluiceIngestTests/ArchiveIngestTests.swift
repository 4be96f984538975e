import Foundation
import SluiceConfig
import SluiceIngest
import SluiceTestSupport
import Testing

/// Archives made at test time by the real tools (installed by scripts/setup.sh).
@Suite("Ingest: archives and compressed files")
struct ArchiveIngestTests {
    /// Archive command (run in the temp dir, `src/` holds a.txt, sub/b.txt, c.md) and its output name.
    static let formats: [(name: String, command: String)] = [
        ("corpus.tar", "tar -cf corpus.tar -C src a.txt c.md sub/b.txt"),
        ("corpus.tar.gz", "tar -czf corpus.tar.gz -C src a.txt c.md sub/b.txt"),
        ("corpus.tgz", "tar -czf corpus.tgz -C src a.txt c.md sub/b.txt"),
        ("corpus.tar.bz2", "tar -cjf corpus.tar.bz2 -C src a.txt c.md sub/b.txt"),
        ("corpus.tar.xz", "tar -cJf corpus.tar.xz -C src a.txt c.md sub/b.txt"),
        ("corpus.tar.zst", "tar -cf - -C src a.txt c.md sub/b.txt | zstd -q -o corpus.tar.zst"),
        ("corpus.tar.lz4", "tar -cf - -C src a.txt c.md sub/b.txt | lz4 -q - corpus.tar.lz4"),
        ("corpus.zip", "cd src && zip -q -X ../corpus.zip a.txt c.md sub/b.txt"),
        ("corpus.7z", "cd src && 7z a -bd -bso0 -bsp0 ../corpus.7z a.txt c.md sub/b.txt"),
        (
            "corpus.cpio",
            "cd src && printf 'a.txt\\nc.md\\nsub/b.txt\\n' | bsdtar -cf ../corpus.cpio --format cpio -T -"
        ),
    ]

    @Test("every archive format gives one document per member, in archive order", arguments: formats.map(\.name))
    func archiveFormats(_ name: String) throws {
        let directory = try TemporaryDirectory()
        try makeTextTree(in: directory)
        let command = try #require(Self.formats.first { $0.name == name }?.command)
        try Shell.must(command, in: directory.url.path)
        let (documents, report) = try ingest([directory.path(name)])
        #expect(documents == ["alpha document\n", "gamma document\n", "beta document\n"])
        #expect(report.documents == 3)
        #expect(report.problems.isEmpty, "\(report.problems)")
    }

    @Test("single compressed files are one document each", arguments: ["gz", "bz2", "xz", "zst", "lz4"])
    func compressedFiles(_ suffix: String) throws {
        let directory = try TemporaryDirectory()
        try directory.write("doc.txt", "compressed text\r\nwith CRLF kept\r\n")
        let tool = ["gz": "gzip -k", "bz2": "bzip2 -k", "xz": "xz -k", "zst": "zstd -q", "lz4": "lz4 -q"][suffix] ?? ""
        try Shell.must("\(tool) doc.txt \(suffix == "lz4" ? "doc.txt.lz4" : "") && rm doc.txt", in: directory.url.path)
        let (documents, report) = try ingest([directory.path("doc.txt.\(suffix)")])
        #expect(documents == ["compressed text\r\nwith CRLF kept\r\n"])
        #expect(report.problems.isEmpty)
    }

    @Test("directories, symlinks, hardlinks and FIFOs in archives are skipped and counted")
    func nonRegularMembers() throws {
        let directory = try TemporaryDirectory()
        try makeTextTree(in: directory)
        try Shell.must(
            "cd src && ln -s a.txt link.txt && ln c.md hard.md && mkfifo pipe && tar -cf ../t.tar a.txt c.md hard.md link.txt pipe sub",
            in: directory.url.path)
        let (documents, report) = try ingest([directory.path("t.tar")])
        #expect(documents == ["alpha document\n", "gamma document\n", "beta document\n"])
        #expect(report.skipped["link_member"]?.count == 2)
        #expect(report.skipped["special_member"]?.count == 1)
        #expect(report.directories == 1)
        #expect(report.skipped["directory_member"] == nil)
        #expect(report.entries == report.documents + report.skippedCount + report.directories)
    }

    @Test("an archive inside an archive is read one level deep; deeper ones are skipped and counted")
    func nestedArchives() throws {
        let directory = try TemporaryDirectory()
        try makeTextTree(in: directory)
        try Shell.must(
            """
            cd src && zip -q -X inner.zip a.txt && gzip -k c.md && tar -cf deeper.tar inner.zip && \
            tar -cf ../outer.tar inner.zip c.md.gz sub/b.txt deeper.tar
            """, in: directory.url.path)
        let (documents, report) = try ingest([directory.path("outer.tar")])
        #expect(documents == ["alpha document\n", "gamma document\n", "beta document\n"])
        #expect(report.skipped["nested_archive"]?.count == 1)
        var skipNested = IngestSettings()
        skipNested.readNestedArchives = false
        let (flat, flatReport) = try ingest([directory.path("outer.tar")], settings: skipNested)
        #expect(flat == ["beta document\n"])
        #expect(flatReport.skipped["nested_archive"]?.count == 3)
    }

    @Test("a truncated archive keeps the members before the damage and names file, member and offset")
    func truncatedArchive() throws {
        let directory = try TemporaryDirectory()
        try directory.write("src/first.txt", String(repeating: "first member text ", count: 2000))
        try directory.write("src/second.txt", String(repeating: "second member, longer ", count: 60_000))
        try Shell.must("tar -czf whole.tar.gz -C src first.txt second.txt", in: directory.url.path)
        let whole = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("whole.tar.gz")))
        try directory.write("cut.tar.gz", Array(whole[..<(whole.count * 2 / 3)]))
        let (documents, report) = try ingest([directory.path("cut.tar.gz")])
        #expect(documents.count == 1)
        #expect(documents.first?.hasPrefix("first member text") == true)
        let problem = try #require(report.problems.first)
        #expect(problem.reason == "corrupt_member")
        #expect(report.partialInputs.first?.file.hasSuffix("cut.tar.gz") == true)
        #expect(problem.file.hasSuffix("cut.tar.gz"))
        #expect(problem.member == "second.txt")
        #expect(problem.offset != nil)
        // on_bad_input "fail" stops at the same place with the same message.
        var strict = IngestSettings()
        strict.onBadInput = .fail
        #expect(throws: IngestError.self) { try ingest([directory.path("cut.tar.gz")], settings: strict) }
    }

    @Test("corrupt bytes in a zip or garbage named .tar never crash; the problem is reported")
    func corruptArchives() throws {
        let directory = try TemporaryDirectory()
        try makeTextTree(in: directory)
        try Shell.must("cd src && zip -q -X ../c.zip a.txt c.md", in: directory.url.path)
        var bytes = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("c.zip")))
        for index in stride(from: 40, to: min(bytes.count, 90), by: 1) { bytes[index] ^= 0x5A }
        try directory.write("c.zip", bytes)
        try directory.write("garbage.tar", (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7919) })
        let (_, zipReport) = try ingest([directory.path("c.zip")])
        #expect(!zipReport.partialInputs.isEmpty)
        #expect(zipReport.entries == zipReport.documents + zipReport.skippedCount + zipReport.directories)
        let (documents, tarReport) = try ingest([directory.path("garbage.tar")])
        #expect(documents.isEmpty)
        #expect(tarReport.problems.first?.reason == "corrupt_archive")
    }

    @Test("member names with ../ and absolute paths are data: nothing is written outside")
    func hostileNames() throws {
        let directory = try TemporaryDirectory()
        try directory.write("work/x.txt", "escape attempt\n")
        try Shell.must(
            """
            cd work && bsdtar -cf ../evil.zip --format zip -s ',^x.txt$,../../evil-outside.txt,' -P x.txt && \
            bsdtar -cf ../abs.tar -s ',^x.txt$,/tmp/sluice-absolute-member.txt,' -P x.txt
            """, in: directory.url.path)
        let listing = try Shell.must("bsdtar -tf evil.zip; bsdtar -tf abs.tar", in: directory.url.path).stdoutText
        #expect(listing.contains("../../evil-outside.txt"))
        let (documents, report) = try ingest([directory.path("evil.zip"), directory.path("abs.tar")])
        #expect(documents == ["escape attempt\n", "escape attempt\n"])
        #expect(report.problems.isEmpty)
        #expect(
            !FileManager.default.fileExists(
                atPath: directory.url.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
                    "evil-outside.txt"
                ).path))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/sluice-absolute-member.txt"))
    }

    @Test("a decompression bomb (~32 GB of zeros) is stopped by max_input_bytes with flat memory")
    func decompressionBomb() throws {
        let directory = try TemporaryDirectory()
        // 1 GiB of zeros compresses to ~32 KB with zstd; 32 concatenated frames are one valid stream.
        try Shell.must(
            "head -c 1073741824 /dev/zero | zstd -q -1 -o one.zst && for i in $(seq 32); do cat one.zst; done > bomb.txt.zst",
            in: directory.url.path)
        var settings = IngestSettings()
        settings.maxInputBytes = 512 << 20
        settings.maxDocumentBytes = 16 << 20
        let before = peakResidentBytes()
        let started = Date()
        let (documents, report) = try ingest([directory.path("bomb.txt.zst")], settings: settings)
        #expect(documents.isEmpty)
        // Zeros are binary by their first 64 KiB: the stream is left unread after them.
        #expect(report.skipped["binary"]?.count == 1)
        var asText = settings
        asText.skipBinary = false
        let (kept, limited) = try ingest([directory.path("bomb.txt.zst")], settings: asText)
        #expect(kept.isEmpty)
        #expect(limited.skipped["decompression_limit"]?.count == 1)
        #expect(limited.problems.first?.message.contains("max_compression_ratio") == true)
        var ratioOff = asText
        ratioOff.maxCompressionRatio = 1 << 40
        let (_, bySize) = try ingest([directory.path("bomb.txt.zst")], settings: ratioOff)
        #expect(bySize.skipped["decompression_limit"]?.count == 1)
        #expect(bySize.problems.first?.message.contains("max_input_bytes") == true)
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(peakResidentBytes() - before < 128 << 20, "memory grew by \(peakResidentBytes() - before) bytes")
    }

    @Test("an oversized member is skipped without being held, and the next member is read")
    func oversizedMember() throws {
        let directory = try TemporaryDirectory()
        try directory.write("src/big.txt", String(repeating: "x", count: 300_000))
        try directory.write("src/small.txt", "small\n")
        try Shell.must("tar -czf t.tgz -C src big.txt small.txt", in: directory.url.path)
        var settings = IngestSettings()
        settings.maxDocumentBytes = 100_000
        let (documents, report) = try ingest([directory.path("t.tgz")], settings: settings)
        #expect(documents == ["small\n"])
        #expect(report.skipped["oversized_document"]?.bytes == 300_000)
        #expect(report.problems.first?.member == "big.txt")
    }
}

/// Peak resident set size of this process so far (getrusage's ru_maxrss is in KiB on Linux).
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Int(usage.ru_maxrss) * 1024
}

@Suite("Ingest: nothing silently lost")
struct NothingLostTests {
    @Test(
        "a compressed file of zeros is binary by default, a document of NUL bytes with binary keep, never an empty tar")
    func zerosAreText() throws {
        let directory = try TemporaryDirectory()
        try Shell.must("head -c 4096 /dev/zero | gzip > zeros.txt.gz", in: directory.url.path)
        let (skipped, report) = try ingest([directory.path("zeros.txt.gz")])
        #expect(skipped.isEmpty)
        #expect(report.skipped["binary"]?.count == 1)
        var keep = IngestSettings()
        keep.skipBinary = false
        let documents = try ingestBytes([directory.path("zeros.txt.gz")], settings: keep)
        #expect(documents == [[UInt8](repeating: 0, count: 4096)])
    }

    @Test("an input that gives no document at all is reported as empty_input")
    func emptyArchive() throws {
        let directory = try TemporaryDirectory()
        try Shell.must("tar -cf empty.tar -T /dev/null && : > nothing.jsonl", in: directory.url.path)
        let (documents, report) = try ingest([directory.path("empty.tar"), directory.path("nothing.jsonl")])
        #expect(documents.isEmpty)
        #expect(report.skipped["empty_input"]?.count == 2)
    }
}
