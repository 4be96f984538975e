import Foundation
import SluiceConfig
import SluiceIngest
import SluiceTestSupport
import Testing

@Suite("Ingest: plain files, JSONL and input expansion")
struct PlainAndJSONLTests {
    @Test("JSONL: escapes, extra fields, bad lines reported as file:line, the rest kept")
    func jsonlEdgeCases() throws {
        let directory = try TemporaryDirectory()
        let lines = [
            #"{"text": "plain record", "id": 1, "meta": {"nested": [1, 2]}}"#,
            #"{"text": "escapes: \" \\ \/ \n\t \u00e9 \ud83d\ude00"}"#,
            #"{"text": "lone surrogate \ud800 here"}"#,
            #"{"text": "trailing comma",}"#,
            #"{"body": "no text field"}"#,
            #"{"text": 42}"#,
            #"["not", "an", "object"]"#,
            "",
            #"{"text": ""}"#,
            "{\"text\": \"crlf line\"}\r",
            #"{"text": "last line without newline"}"#,
        ]
        let path = try directory.write("data.jsonl", lines.joined(separator: "\n"))
        let (documents, report) = try ingest([path])
        #expect(
            documents == [
                "plain record", "escapes: \" \\ / \n\t é 😀", "lone surrogate \u{FFFD} here", "crlf line",
                "last line without newline",
            ])
        #expect(report.loneSurrogatesReplaced == 1)
        let located = report.problems.map { "\($0.reason)@\($0.line ?? -1)" }
        #expect(
            located == [
                "malformed_jsonl@4", "missing_text_field@5", "missing_text_field@6", "malformed_jsonl@7",
                "empty_document@9",
            ])
        let trailing = try #require(report.problems.first)
        #expect(trailing.message.contains("column"))
        #expect(
            IngestError(.malformedJSONL, file: "data.jsonl", line: 4, trailing.message).description.hasPrefix(
                "data.jsonl:4: "))
    }

    @Test("JSONL text_field is configurable, and JSONL inside .gz and inside a tar is read")
    func jsonlCompressedAndInArchive() throws {
        let directory = try TemporaryDirectory()
        try directory.write("src/a.jsonl", "{\"content\": \"one\"}\n{\"content\": \"two\"}\n")
        try Shell.must(
            "cd src && gzip -k a.jsonl && tar -cf ../t.tar a.jsonl && mv a.jsonl.gz ..", in: directory.url.path)
        var settings = IngestSettings()
        settings.textField = "content"
        #expect(try ingest([directory.path("a.jsonl.gz")], settings: settings).documents == ["one", "two"])
        #expect(try ingest([directory.path("t.tar")], settings: settings).documents == ["one", "two"])
    }

    @Test("a JSONL record longer than the limit streams past without being held")
    func hugeJSONLRecord() throws {
        let directory = try TemporaryDirectory()
        let huge = "{\"text\": \"" + String(repeating: "y", count: 2_000_000) + "\"}"
        let path = try directory.write("big.jsonl", "{\"text\": \"before\"}\n" + huge + "\n{\"text\": \"after\"}\n")
        var settings = IngestSettings()
        settings.maxDocumentBytes = 100_000
        let (documents, report) = try ingest([path], settings: settings)
        #expect(documents == ["before", "after"])
        #expect(report.problems.map(\.line) == [2])
        #expect(report.skipped["oversized_document"]?.count == 1)
    }

    @Test("Latin-1 text is repaired per policy, counted, or fails naming the byte offset")
    func latin1() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(
            "latin1.txt", Array("caf".utf8) + [0xE9] + Array(" na".utf8) + [0xEF] + Array("ve".utf8))
        let (documents, report) = try ingest([path])
        #expect(documents == ["caf\u{FFFD} na\u{FFFD}ve"])
        #expect(report.invalidUTF8Replaced == 2)
        #expect(report.documentsWithInvalidUTF8 == 1)
        var fail = IngestSettings()
        fail.invalidUTF8 = .fail
        do {
            _ = try ingest([path], settings: fail)
            Issue.record("invalid UTF-8 did not fail the run")
        } catch let error as IngestError {
            #expect(error.offset == 3)
            #expect(error.description.contains("latin1.txt at byte 3"))
        }
        var skip = IngestSettings()
        skip.invalidUTF8 = .skip
        let skipped = try ingest([path], settings: skip)
        #expect(skipped.documents.isEmpty)
        #expect(skipped.report.skipped["invalid_utf8"]?.bytes == 10)
    }

    @Test("NUL bytes, CRLF, a BOM and UTF-16 files: the policy, byte for byte")
    func encodings() throws {
        let directory = try TemporaryDirectory()
        try directory.write("1-nul-crlf.txt", Array("a\0b\r\n".utf8))
        try directory.write("2-bom.txt", [0xEF, 0xBB, 0xBF] + Array("bom".utf8))
        try directory.write("3-utf16.txt", [0xFF, 0xFE] + "hé".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        try directory.write("4-empty.txt", [])
        let (documents, report) = try ingest([directory.url.path])
        #expect(documents == ["a\0b\r\n", "bom", "hé"])
        #expect(report.skipped["empty_document"]?.count == 1)
        #expect(report.utf16Decoded == 1)
    }

    @Test("inputs are sorted by path bytes, whatever order they are given or created in")
    func deterministicOrder() throws {
        let directory = try TemporaryDirectory()
        for name in ["b/2.txt", "a/10.txt", "a/9.txt", "B.txt", "a.txt", ".hidden.txt"] {
            try directory.write(name, name)
        }
        let root = directory.url.path
        let forward = try ingest([root]).documents
        let shuffled = try ingest(["\(root)/b", "\(root)/a.txt", "\(root)/*.txt", "\(root)/a", "\(root)/B.txt"])
            .documents
        #expect(forward == ["B.txt", "a.txt", "a/10.txt", "a/9.txt", "b/2.txt"])
        #expect(shuffled == forward)
    }

    @Test("a missing input or a pattern with no match is an error naming it")
    func missingInputs() throws {
        #expect(throws: IngestError.self) { try InputResolver.expand(["/nonexistent/corpus"]) }
        do {
            _ = try InputResolver.expand(["/tmp/sluice-no-such-dir-*/x*.txt"])
            Issue.record("an empty glob was accepted")
        } catch {
            #expect(error.description.contains("/tmp/sluice-no-such-dir-*/x*.txt"))
        }
    }

    @Test("an unreadable file is reported with the OS error, and the run goes on")
    func unreadableFile() throws {
        guard getuid() != 0 else { return }  // root reads everything; covered by CI's non-root runs only
        let directory = try TemporaryDirectory()
        let path = try directory.write("secret.txt", "x")
        chmod(path, 0)
        let (documents, report) = try ingest([path])
        #expect(documents.isEmpty)
        #expect(report.problems.first?.message.contains("Permission denied") == true)
    }
}

@Suite("Ingest: JSONL byte-range slices")
struct JSONLSliceTests {
    @Test("cut anywhere, the slices of a JSONL file give exactly the whole file's documents and problems")
    func slicesEqualWhole() throws {
        let directory = try TemporaryDirectory()
        var text = ""
        for index in 0..<40 {
            switch index % 9 {
            case 3: text += "not json \(index)\n"
            case 5: text += "\n"
            case 7: text += "{\"text\": \"crlf record \(index)\"}\r\n"
            default: text += "{\"text\": \"record \(index) — \(String(repeating: "é", count: index % 4))\"}\n"
            }
        }
        text += "{\"text\": \"last line without a newline\"}"
        let path = try directory.write("big.jsonl", text)
        let size = text.utf8.count
        let whole = try ingest([path])
        let badLines = text.split(separator: "\n").filter { $0.hasPrefix("not json") }.count
        #expect(badLines == 5 && whole.report.skipped["malformed_jsonl"]?.count == badLines)
        // Every slice width from 1 byte to past the file, every start: same documents in order.
        for width in [1, 2, 3, 7, 16, 33, 64, 100, 257, size, size + 5] {
            let collected = Collected()
            let reader = IngestReader(settings: IngestSettings()) { collected.documents.append(try $0.wholeBytes()) }
            for start in stride(from: 0, to: size, by: width) {
                try reader.read(
                    InputFile(
                        path: path, name: "big.jsonl", byteCount: size, byteRange: start..<min(start + width, size)))
            }
            #expect(
                collected.documents.map { String(decoding: $0, as: UTF8.self) } == whole.documents, "width \(width)")
            #expect(reader.report.inputFiles == 1 && reader.report.inputBytes == size, "width \(width)")
            #expect(reader.report.skipped["malformed_jsonl"]?.count == badLines, "width \(width)")
            // Problems in a slice name the line's byte offset in the file.
            let offsets = reader.report.problems.compactMap(\.offset)
            let expected = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).reduce(
                into: (offsets: [Int](), position: 0)
            ) { state, line in
                if line.starts(with: Array("not json".utf8)) { state.offsets.append(state.position) }
                state.position += line.count + 1
            }.offsets
            #expect(offsets == expected, "width \(width)")
        }
    }
}
