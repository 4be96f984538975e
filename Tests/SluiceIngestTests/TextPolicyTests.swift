import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluiceTestSupport
import Testing

@Suite("TextPolicy")
struct TextPolicyTests {
    struct PythonCase: Sendable, CustomTestStringConvertible {
        let input: [UInt8]
        let output: [UInt8]
        let replaced: Int
        var testDescription: String { input.map { String(format: "%02x", $0) }.joined() }
    }

    static let pythonCases: [PythonCase] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/utf8-replace.json")
        guard let object = try? Fixtures.json(url) as? [String: Any], let cases = object["cases"] as? [[String: Any]]
        else { return [] }
        func bytes(_ hex: String) -> [UInt8] {
            var result: [UInt8] = []
            var index = hex.startIndex
            while index < hex.endIndex {
                let next = hex.index(index, offsetBy: 2)
                result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
                index = next
            }
            return result
        }
        return cases.map {
            PythonCase(
                input: bytes($0["input"] as? String ?? ""), output: bytes($0["output"] as? String ?? ""),
                replaced: $0["replaced"] as? Int ?? -1)
        }
    }()

    @Test("invalid UTF-8 is replaced exactly as CPython's errors=\"replace\" (2,026 cases)")
    func matchesPython() {
        #expect(Self.pythonCases.count == 2026)
        for testCase in Self.pythonCases {
            let (output, replaced) = UTF8Repair.repair(testCase.input, mode: .replace)
            #expect(output == testCase.output, "input \(testCase.testDescription)")
            #expect(replaced == testCase.replaced, "input \(testCase.testDescription)")
            #expect(
                (UTF8Repair.firstInvalid(testCase.input) == nil) == (replaced == 0),
                "input \(testCase.testDescription)")
        }
    }

    @Test("a UTF-8 byte order mark is stripped; NUL and CRLF are kept byte for byte")
    func bomNulCRLF() {
        var repairs = TextPolicy.Repairs()
        let policy = TextPolicy(settings: IngestSettings())
        #expect(policy.apply([0xEF, 0xBB, 0xBF] + Array("hi".utf8), repairs: &repairs) == .text(Array("hi".utf8)))
        #expect(repairs.byteOrderMarksStripped == 1)
        let raw = Array("a\0b\r\nc\r".utf8)
        #expect(policy.apply(raw, repairs: &repairs) == .text(raw))
    }

    @Test("newlines \"lf\" and nul_bytes \"strip\" change only what they say")
    func normalizing() {
        var settings = IngestSettings()
        settings.normalizeNewlines = true
        settings.stripNulBytes = true
        var repairs = TextPolicy.Repairs()
        #expect(
            TextPolicy(settings: settings).apply(Array("a\0b\r\nc\rd\n".utf8), repairs: &repairs)
                == .text(Array("ab\nc\nd\n".utf8)))
    }

    @Test("UTF-16 LE and BE with a BOM decode to UTF-8, or are rejected when configured")
    func utf16() {
        let text = "héllo 👋"
        let le: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let be: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        var repairs = TextPolicy.Repairs()
        let policy = TextPolicy(settings: IngestSettings())
        #expect(policy.apply(le, repairs: &repairs) == .text(Array(text.utf8)))
        #expect(policy.apply(be, repairs: &repairs) == .text(Array(text.utf8)))
        #expect(repairs.utf16Decoded == 2)
        var reject = IngestSettings()
        reject.decodeUTF16 = false
        guard case .rejected(.utf16Rejected, let message) = TextPolicy(settings: reject).apply(le, repairs: &repairs)
        else {
            Issue.record("UTF-16 was not rejected")
            return
        }
        #expect(message.contains("ingest.utf16"))
        // A lone surrogate in UTF-16 becomes U+FFFD and is counted.
        let lone: [UInt8] = [0xFF, 0xFE, 0x41, 0x00, 0x00, 0xD8, 0x42, 0x00]
        var counted = TextPolicy.Repairs()
        #expect(policy.apply(lone, repairs: &counted) == .text(Array("A\u{FFFD}B".utf8)))
        #expect(counted.invalidUTF8Sequences == 1)
    }

    @Test("invalid_utf8 \"skip\" rejects the document; empty documents are rejected and counted")
    func skipAndEmpty() {
        var settings = IngestSettings()
        settings.invalidUTF8 = .skip
        var repairs = TextPolicy.Repairs()
        guard case .rejected(.invalidUTF8, _) = TextPolicy(settings: settings).apply([0x61, 0xFF], repairs: &repairs)
        else {
            Issue.record("invalid UTF-8 was not rejected")
            return
        }
        guard case .rejected(.emptyDocument, _) = TextPolicy(settings: IngestSettings()).apply([], repairs: &repairs)
        else {
            Issue.record("empty document was not rejected")
            return
        }
    }
}
