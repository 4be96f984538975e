import Foundation
import SluiceConfig
import SluiceIO
import SluiceTestSupport
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    static func decode(_ text: String) throws(ConfigError) -> Configuration {
        try Configuration.decode(Array(text.utf8), file: "test.json", baseDirectory: "/base")
    }

    static func message(_ text: String) -> String {
        do {
            _ = try decode(text)
            return "<accepted>"
        } catch {
            return error.description
        }
    }

    @Test(
        "every pipeline in pipelines/ decodes",
        arguments: try FileManager.default.contentsOfDirectory(
            atPath: Fixtures.repositoryRoot.appendingPathComponent("pipelines").path
        ).filter { $0.hasSuffix(".json") }.sorted())
    func pipelinesDecode(_ name: String) throws {
        let configuration = try Configuration.load(
            file: Fixtures.repositoryRoot.appendingPathComponent("pipelines/\(name)").path)
        #expect(!configuration.inputs.isEmpty)
        #expect(configuration.resolvedSHA256.count == 64)
    }

    @Test("a missing or unreadable config file is one line with the OS's reason")
    func unreadableConfigFile() throws {
        let directory = try TemporaryDirectory()
        for (path, reason) in [
            (directory.path("missing.json"), "No such file or directory"), (directory.url.path, "Is a directory"),
        ] {
            do {
                _ = try Configuration.load(file: path)
                Issue.record("\(path) loaded")
            } catch {
                #expect(error.description == "\(path): cannot read the config file: \(reason)", "\(error.description)")
            }
        }
    }

    @Test("defaults are filled in, in one place, and the resolved config is stable")
    func defaults() throws {
        let configuration = try Self.decode(#"{"inputs": ["corpus/"]}"#)
        #expect(configuration.output == "out")
        #expect(configuration.workers == nil)
        #expect(configuration.retries == 2)
        #expect(configuration.ingest == IngestSettings())
        #expect(configuration.tokenizer == nil)
        #expect(configuration.resolvePath("corpus/") == "/base/corpus")
        let again = try Self.decode("{ \"inputs\" : [ \"corpus/\" ] }")
        #expect(again.resolvedSHA256 == configuration.resolvedSHA256)
        let resolved = configuration.resolved.serialized()
        #expect(resolved.contains("\"max_document_bytes\": 17179869184"))
        #expect(resolved.contains("\"invalid_utf8\": \"replace\""))
    }

    @Test("the book's settings decode to the same values")
    func bookSettings() throws {
        let configuration = try Self.decode(
            """
            {"inputs": ["the-verdict.txt"], "tokenizer": {"vocab": "gpt2.tiktoken"},
             "window": {"max_length": 4, "stride": 4, "batch_size": 8, "shuffle": "torch", "seed": 123},
             "embedding": {"output_dim": 256, "context_length": 4, "dtype": "bfloat16"}}
            """)
        #expect(configuration.tokenizer?.specialTokens == ["<|endoftext|>": 50256])
        #expect(configuration.tokenizer?.documentSeparator == "<|endoftext|>")
        let window = try #require(configuration.window)
        #expect((window.maxLength, window.stride, window.batchSize, window.seed) == (4, 4, 8, 123))
        #expect(window.shuffle == .torch && window.dropLast && window.crossDocument)
        #expect(configuration.embedding?.dtype == "bfloat16")
        #expect(configuration.embedding?.torchKernel == "avx2")
    }

    /// torch.manual_seed keeps a seed's 64-bit two's complement: -5 is 2^64 − 5, and
    /// initial_seed() prints 18446744073709551611 (python/tests/test_tables.py checks the tables
    /// and the DataLoader order against torch itself).
    @Test("seeds take torch's range, negative ones as their two's complement")
    func seeds() throws {
        let cases: [(String, UInt64)] = [
            ("-5", 18_446_744_073_709_551_611), ("18446744073709551611", 18_446_744_073_709_551_611),
            ("-9223372036854775808", 1 << 63), ("9223372036854775808", 1 << 63), ("18446744073709551615", .max),
            ("-1", .max), ("0", 0),
        ]
        for (text, bits) in cases {
            let configuration = try Self.decode(
                """
                {"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"seed": \(text)},
                 "embedding": {"seed": \(text)}, "split": {"seed": \(text)}}
                """)
            #expect(configuration.window?.seed == bits, "\(text)")
            #expect(configuration.embedding?.seed == bits, "\(text)")
            #expect(configuration.split.seed == bits, "\(text)")
            // The resolved config keeps the seed as written.
            #expect(configuration.resolved.serialized().contains("\"seed\": \(text)"), "\(text)")
        }
        #expect(Seed("-5")?.bits == 18_446_744_073_709_551_611 && Seed("-5") == Seed("18446744073709551611"))
        #expect(Seed("18446744073709551616") == nil && Seed("-9223372036854775809") == nil && Seed("1.0") == nil)
        #expect(Seed(bits: .max).description == "18446744073709551615")
    }

    @Test(
        "mistakes name the file, line:column, JSON path and the closest valid key",
        arguments: [
            (
                #"{"inputs": ["a"], "window": {"strid": 4}}"#,
                #"test.json:1:30: window.strid: unknown key "strid" in "window" — did you mean "stride"?"#
            ),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"stride": 0}}"#,
                "test.json:1:69: window.stride: expected an integer from 1 to 1073741824, got 0"
            ),
            (#"{"inputs": ["a"], "workers": 0}"#, "test.json:1:30: workers: expected an integer from 1 to 1024, got 0"),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"max_length": 0}}"#,
                "window.max_length: expected an integer from 1"
            ),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"seed": 18446744073709551616}}"#,
                "window.seed: expected an integer from -9223372036854775808 to 18446744073709551615 (torch.manual_seed's range), got 1.8446744073709552e+19"
            ),
            (
                #"{"inputs": ["a"], "split": {"seed": -9223372036854775809}}"#,
                "split.seed: expected an integer from -9223372036854775808"
            ),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"seed": "5"}}"#,
                #"window.seed: expected an integer from -9223372036854775808 to 18446744073709551615 (torch.manual_seed's range), got "5""#
            ),
            (
                #"{"inputs": ["a"], "ingest": {"part_bytes": 9223372036854775808}}"#,
                "ingest.part_bytes: expected an integer ≥ 1, got 9223372036854775808"
            ),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {}, "embedding": {"dtype": "float64"}}"#,
                #"embedding.dtype: expected one of "float32", "float16", "bfloat16", got "float64""#
            ),
            (#"{"inputs": ["a"], "ingest": {"invalid_utf8": "replce"}}"#, #"did you mean "replace"?"#),
            (#"{"inputs": "corpus/"}"#, #"test.json:1:12: inputs: expected an array, got "corpus/""#),
            (#"{"inputs": []}"#, "inputs: expected at least 1 item(s), got 0"),
            (#"{"output": "x"}"#, "test.json:1:1: inputs: required key is missing"),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"shuffle": "yes"}}"#,
                #"window.shuffle: expected true or false or "torch", got "yes""#
            ),
            (#"{"inputs": ["a"], "inptus": []}"#, #"unknown key "inptus" — did you mean "inputs"?"#),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v", "document_separator": "<|sep|>"}}"#,
                #"tokenizer.document_separator: "<|sep|>" is not one of tokenizer.special_tokens"#
            ),
            (#"{"inputs": ["a"], "window": {}}"#, #"window: windows need token ids: add a "tokenizer" section"#),
            (
                #"{"inputs": ["a"], "tokenizer": {"vocab": "v"}, "window": {"max_length": 8}, "embedding": {"context_length": 4}}"#,
                "embedding.context_length: 4 is shorter than window.max_length 8"
            ),
            ("{\"inputs\": [\"a\"],\n  \"workers\": 2,\n}", "test.json:3:1: invalid JSON: trailing comma before '}'"),
            (#"{"inputs": ["a"], "workers": 2.5}"#, "workers: expected an integer from 1 to 1024, got 2.5"),
        ])
    func mistakes(_ text: String, _ expected: String) {
        let message = Self.message(text)
        #expect(message.contains(expected), "got: \(message)")
    }

    @Test("all problems are reported at once, one per line")
    func allProblems() {
        let message = Self.message(
            #"{"inputs": ["a"], "workers": 0, "retries": -1, "ingest": {"max_document_bytes": 0}}"#)
        #expect(message.split(separator: "\n").count == 3)
    }

    @Test("the schema lists every key with its default, and is strict about unknown keys")
    func schema() throws {
        let schema = ConfigSchema.document()
        #expect(schema["$schema"]?.string == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["additionalProperties"]?.value == .bool(false))
        let window = try #require(schema["properties"]?["window"]?["anyOf"])
        guard case .array(let options) = window.value else {
            Issue.record("window is not nullable")
            return
        }
        #expect(options[0]["properties"]?["stride"]?["minimum"]?.value == .integer(1))
        #expect(options[0]["properties"]?["stride"]?["default"]?.value == .integer(128))
    }
}
