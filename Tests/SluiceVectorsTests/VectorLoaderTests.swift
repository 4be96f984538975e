import Foundation
import SluiceIO
import SluiceTestSupport
import SluiceVectors
import Testing

func bitsHex(_ values: [Float]) -> [String] { values.map { String(format: "%08x", $0.bitPattern) } }

@Suite(
    "Vector files load as gensim loads them",
    .enabled(if: Fixtures.hasShared, "needs ../shared (the gensim goldens), which is not beside the repository"))
struct VectorLoaderGoldenTests {
    static let directory = Fixtures.shared("golden/gensim")

    @Test("every loader.jsonl file: gensim's keys and float32 bits, or an error where gensim's result is a quirk")
    func loaderGoldens() throws {
        let records = try Fixtures.jsonLines(Self.directory.appendingPathComponent("loader.jsonl"))
        #expect(records.count == 15)
        let scratch = try TemporaryDirectory("vectors-loader")
        for case let record as [String: Any] in records {
            let id = try #require(record["id"] as? String)
            let encoded = try #require(record["file_b64"] as? String)
            let bytes = try #require(Data(base64Encoded: encoded))
            let file = try scratch.write(id.replacingOccurrences(of: "/", with: "_"), [UInt8](bytes))
            let args = try #require(record["args"] as? [String: Any])
            let formatName = try #require(record["format"] as? String)
            let options = VectorLoadOptions(
                format: VectorFormat(rawValue: formatName),
                limit: args["limit"] as? Int,
                unicodeErrors: UnicodeErrors(rawValue: args["unicode_errors"] as? String ?? "strict") ?? .strict)
            let expect = try #require(record["expect"] as? String)
            let loaded = Result { () throws(VectorsError) in try WordVectors.load(file, options: options) }
            func matches(_ result: [String: Any]) -> Bool {
                guard case .success(let vectors) = loaded,
                    let keys = result["keys"] as? [String?], let bits = result["bits"] as? [String]
                else { return false }
                return (0..<vectors.count).map { Optional(vectors.keys[$0]) } == keys
                    && bitsHex(vectors.matrix) == bits
            }
            switch expect {
            case "match":
                let result = try #require(record["result"] as? [String: Any])
                #expect(matches(result), "\(id): \(loaded)")
            case "error":
                guard case .failure(let error) = loaded else {
                    Issue.record("\(id): loaded, but gensim raised")
                    continue
                }
                // One line that names the file.
                #expect(!"\(error)".contains("\n") && "\(error)".contains(file), "\(id): \(error)")
            default:
                let alternatives = [record["result"], record["alt_result"]].compactMap { $0 as? [String: Any] }
                if case .success = loaded {
                    #expect(
                        alternatives.contains(where: matches), "\(id): loaded something neither gensim nor its alt gave"
                    )
                }
            }
        }
    }

    @Test("the three shipped files load to the summaries queries.jsonl records")
    func shippedFiles() throws {
        let records = try Fixtures.jsonLines(Self.directory.appendingPathComponent("queries.jsonl"))
        var checked = 0
        for case let record as [String: Any] in records where record["op"] as? String == "load_summary" {
            let name = try #require(record["vectors"] as? String)
            let file = Self.directory.appendingPathComponent(name).path
            let args = try #require(record["args"] as? [String: Any])
            let formatName = try #require(record["format"] as? String)
            let vectors = try WordVectors.load(
                file,
                options: VectorLoadOptions(
                    format: VectorFormat(rawValue: formatName),
                    limit: args["limit"] as? Int))
            let expected = try #require(record["result"] as? [String: Any])
            let summary = vectors.summary
            #expect(summary.count == expected["count"] as? Int)
            #expect(summary.dim == expected["dim"] as? Int)
            #expect(summary.keysSHA256 == expected["keys_sha256"] as? String)
            #expect(summary.vectorsSHA256 == expected["vectors_sha256"] as? String)
            #expect(summary.firstKeys == expected["first_keys"] as? [String])
            #expect(summary.lastKeys == expected["last_keys"] as? [String])
            // Detection from content alone reads the same format.
            let detected = try WordVectors.load(file, options: VectorLoadOptions(limit: args["limit"] as? Int))
            #expect(detected.format.rawValue == record["format"] as? String)
            checked += 1
        }
        #expect(checked == 5)
    }

    @Test("norms and unit rows are numpy's bit for bit")
    func normsAndUnitRows() throws {
        let records = try Fixtures.jsonLines(Self.directory.appendingPathComponent("queries.jsonl"))
        var checked = 0
        for case let record as [String: Any] in records {
            guard let op = record["op"] as? String, op == "norm" || op == "unit_vector" else { continue }
            let name = try #require(record["vectors"] as? String)
            let vectors = try WordVectors.load(Self.directory.appendingPathComponent(name).path)
            let args = try #require(record["args"] as? [String: Any])
            let key = try #require(args["key"] as? String)
            if op == "norm" {
                let expected = try #require(record["result"] as? Double)
                #expect(Double(try vectors.norm(key)) == expected, "\(key)")
            } else {
                let expected = try #require(record["result"] as? [Double]).map { Float($0) }
                #expect(bitsHex(try vectors.unitVector(key)) == bitsHex(expected), "\(key)")
            }
            checked += 1
        }
        #expect(checked == 4)
    }

    @Test("convert round trips: every format reloads to the same keys and bits")
    func convertRoundTrip() throws {
        let scratch = try TemporaryDirectory("vectors-convert")
        let original = try WordVectors.load(Self.directory.appendingPathComponent("glove-6b-50d-top4000.txt").path)
        for format in VectorFormat.allCases {
            let path = scratch.path("out.\(format.rawValue)\(format == .safetensors ? ".safetensors" : "")")
            try original.write(to: path, format: format)
            let again = try WordVectors.load(path)
            #expect(again.format == format)
            #expect(again.summary.keysSHA256 == original.summary.keysSHA256, "\(format)")
            #expect(again.summary.vectorsSHA256 == original.summary.vectorsSHA256, "\(format)")
        }
        // gensim's own text writer gave the shipped file: ours writes the same bytes.
        try original.write(to: scratch.path("glove.txt"), format: .glove)
        #expect(
            try SHA256Hasher.hex(ofFile: scratch.path("glove.txt"))
                == "c956534f6cfea4c5fa10ff579ccf81c0c766e9410cdb63473ef00a307a25db9f")
    }
}

@Suite("Vector files: bad input is one clear line, never a crash or a huge allocation")
struct VectorLoaderBadInputTests {
    func load(_ bytes: [UInt8], format: VectorFormat? = nil, name: String = "v.txt") throws -> VectorsError? {
        let scratch = try TemporaryDirectory("vectors-bad")
        let file = try scratch.write(name, bytes)
        do {
            _ = try WordVectors.load(file, options: VectorLoadOptions(format: format))
            return nil
        } catch {
            #expect(!error.description.contains("\n"), "\(error)")
            #expect(error.description.contains(file), "\(error)")
            return error
        }
    }

    @Test("a header claiming 10^12 rows is refused before allocating")
    func hugeHeader() throws {
        let error = try #require(try load(Array("1000000000000 300\nthe 1 2\n".utf8)))
        #expect(error.kind == .eofError)
        let binary = try #require(try load(Array("1000000000000 300\n".utf8), format: .word2vecBinary))
        #expect(binary.description.contains("1000000000000"))
    }

    @Test("wrong value counts, bad numbers, one broadcast value, hex and blank lines name the line")
    func textErrors() throws {
        #expect(try load(Array("2 3\naa 1 2 3\nbb 4 5\n".utf8))?.location == "line 3")
        #expect(try load(Array("1 3\naa 1 2 x\n".utf8))?.message.contains("'x'") == true)
        #expect(try load(Array("1 3\naa 1\n".utf8), format: .word2vecText) != nil)
        #expect(try load(Array("1 2\naa 0x1p3 2\n".utf8), format: .word2vecText) != nil)
        #expect(try load(Array("aa 1 2\n\nbb 3 4\n".utf8), format: .glove)?.location == "line 2")
        #expect(try load(Array("aa 1 2 3 4\nbb 1 2\n".utf8), format: .glove) != nil)
    }

    @Test("Python float() syntax: underscores, inf, nan, signs; double then float32")
    func pythonFloats() throws {
        let scratch = try TemporaryDirectory("vectors-floats")
        let file = try scratch.write(
            "f.txt", "1 8\naa 1_0 -inf Infinity nan +.5 3.5e38 1e-50 1.000000059604644775390625000001\n")
        let vectors = try WordVectors.load(file)
        let row = vectors.matrix
        #expect(row[0] == 10)
        #expect(row[1] == -.infinity && row[2] == .infinity && row[3].isNaN)
        #expect(row[4] == 0.5)
        #expect(row[5] == .infinity)  // double 3.5e38 rounds past float32's range
        #expect(row[6] == 0)
        #expect(row[7] == 1.0)  // two roundings, as gensim; strtof would give 1.0000001
        #expect(try load(Array("1 1\naa 1__0\n".utf8), format: .word2vecText) != nil)
        #expect(try load(Array("1 1\naa _1\n".utf8), format: .word2vecText) != nil)
    }

    @Test("a missing file, an empty file, a truncated binary record and a bad safetensors file")
    func otherErrors() throws {
        do {
            _ = try WordVectors.load("/nonexistent/vectors.bin")
            Issue.record("loaded a file that does not exist")
        } catch {
            #expect(error.kind == .ioError && error.description.contains("/nonexistent/vectors.bin"))
        }
        #expect(try load([], format: .word2vecText) != nil)
        #expect(try load(Array("1 3\naa ".utf8) + [0, 0, 128], format: .word2vecBinary)?.kind == .eofError)
        #expect(try load(Array("junk".utf8), format: .safetensors, name: "v.safetensors") != nil)
    }

    @Test("duplicates: the first key wins and no zero row is left")
    func duplicates() throws {
        let scratch = try TemporaryDirectory("vectors-dup")
        let file = try scratch.write("d.txt", "aa 1 2 3\nbb 4 5 6\naa 7 8 9\n")
        let vectors = try WordVectors.load(file)
        #expect(vectors.count == 2 && vectors.duplicatesDropped == 1)
        #expect(vectors.matrix == [1, 2, 3, 4, 5, 6])
    }
}
