import Foundation
import SluiceIO
import SluiceTestSupport
import Testing

/// Knowing the cost first: sluice plan's projection, the refusal of embeddings far larger than
/// the text, and sluice stats.
@Suite("output cost and stats")
struct OutputCostTests {
    let verdict = Fixtures.repositoryRoot.appendingPathComponent("examples/the-verdict.txt").path

    func tokenizer() -> String {
        #""tokenizer": {"vocab": "\#(vocabDirectory)/encoder.json", "merges": "\#(vocabDirectory)/vocab.bpe"}"#
    }

    @Test("sluice plan projects each stage's bytes, exactly once the tokenize tasks have run")
    func planProjection() throws {
        let directory = try TemporaryDirectory()
        let config = try writeConfig(
            directory,
            #"{"inputs": ["\#(verdict)"], \#(tokenizer()), "window": {"max_length": 4, "stride": 4, "batch_size": 8}, "embedding": {"output_dim": 768, "dtype": "bfloat16"}}"#
        )
        let before = try SluiceBinary.run(["plan", config])
        #expect(before.status == 0, "\(before.stderr)")
        #expect(before.stdoutText.contains("projected output (20479 input bytes × 0.3 tokens a byte ≈ 6143 tokens"))
        #expect(before.stdoutText.contains("embeddings 768 × bfloat16 = 1536 bytes a token"))
        let out = directory.path("out")
        #expect(try SluiceBinary.run(["run", config, "--out", out]).status == 0)
        let after = try SluiceBinary.run(["plan", config, "--out", out])
        #expect(after.stdoutText.contains("projected output (5145 tokens, counted by this output's tokenize tasks)"))
        // 1,280 windows × 4 tokens × (768 × 2 bytes) of embeddings, plus the ids: within 10 % of the shards.
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json")))
                as? [String: Any])
        let totals = try #require(manifest["totals"] as? [String: Any])
        let shardBytes = try #require(totals["shard_bytes"] as? Int)
        let line = try #require(after.stdoutText.split(separator: "\n").first { $0.contains("shards/") })
        let mebibytes = try #require(Double(line.split(separator: " ").filter { !$0.isEmpty }[2]))
        #expect(abs(mebibytes * 1_048_576 - Double(shardBytes)) < 0.10 * Double(shardBytes), "\(line) vs \(shardBytes)")
    }

    @Test("embeddings above 64× the text and 1 GiB are refused before anything is drawn, naming the way out")
    func largeOutputRefused() throws {
        let directory = try TemporaryDirectory()
        // One token a byte and a 257-row table: the shards' embeddings are what is large.
        let ranks = try writeByteRanks(directory)
        let config = try writeConfig(
            directory,
            #"{"inputs": ["\#(verdict)"], "tokenizer": {"vocab": "\#(ranks)", "special_tokens": {"<|endoftext|>": 256}}, "window": {"max_length": 4, "stride": 4, "batch_size": 8}, "embedding": {"output_dim": 16384, "context_length": 4}}"#
        )
        let out = directory.path("out")
        let result = try SluiceBinary.run(["run", config, "--out", out])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("the embeddings would take 1.2 GiB, 65526× the 20.0 KiB of text"), "\(result.stderr)"
        )
        #expect(result.stderr.contains("--allow-large-output") && result.stderr.contains("\"kind\": \"tokens\""))
        #expect(!FileManager.default.fileExists(atPath: out + "/tables"))
        #expect(!FileManager.default.fileExists(atPath: out + "/shards"))
    }

    @Test("sluice stats: tokens per document and per input file, bytes per token, skipped by reason")
    func stats() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let out = directory.path("out")
        let run = try SluiceBinary.run([
            "run", try writeConfig(directory, tokenizedCorpusConfig(corpus)), "--out", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try SluiceBinary.run(["stats", out, "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [String: Any])
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json")))
                as? [String: Any])
        let ingest = try #require(report["ingest"] as? [String: Any])
        #expect(stats["documents"] as? Int == ingest["documents"] as? Int)
        // Per-document counts add up to the stream: the report's tokens less the separators.
        let documents = try #require(stats["documents"] as? Int)
        #expect(stats["tokens"] as? Int == (report["tokens"] as? Int ?? 0) - (documents - 1))
        let inputs = try #require(stats["inputs"] as? [[String: Any]])
        #expect(inputs.reduce(0) { $0 + ($1["documents"] as? Int ?? 0) } == documents)
        #expect(inputs.reduce(0) { $0 + ($1["tokens"] as? Int ?? 0) } == stats["tokens"] as? Int)
        let histogram = try #require(stats["histogram"] as? [[String: Any]])
        #expect(histogram.reduce(0) { $0 + ($1["documents"] as? Int ?? 0) } == documents)
        let skipped = try #require(stats["skipped"] as? [String: Any])
        #expect(skipped["malformed_jsonl"] != nil)
        let text = try SluiceBinary.run(["stats", out])
        #expect(text.stdoutText.contains("tokens per document: min "))
        #expect(text.stdoutText.contains("skipped    malformed_jsonl: 1"))
        #expect(text.stdoutText.contains("█"))
    }
}
