import Foundation
import SluiceIO
import SluiceTestSupport
import Testing

/// `shards.kind` "tokens": the stream once, in standard LZ4 frames of 64 KiB blocks, with a
/// document index; `sluice verify` checks it, config check refuses what it cannot hold.
@Suite("token shards")
struct TokenShardTests {
    func config(
        _ corpus: String, window: String = #"{"max_length": 8, "stride": 8, "batch_size": 4}"#, extra: String = ""
    )
        -> String
    {
        """
        {"inputs": ["\(corpus)"], "ingest": {"part_bytes": 200},
         "tokenizer": {"vocab": "\(vocabDirectory)/encoder.json", "merges": "\(vocabDirectory)/vocab.bpe"},
         "window": \(window), "shards": {"kind": "tokens", "target_bytes": 1}\(extra)}
        """
    }

    @Test("the shards hold the token stream back to back, and the index where each document starts")
    func streamAndIndex() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let out = directory.path("out")
        let result = try SluiceBinary.run(["run", try writeConfig(directory, config(corpus)), "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let tokensOut = directory.path("tokens-only")
        let reference = try SluiceBinary.run([
            "run", try writeConfig(directory, name: "t.json", tokenizedCorpusConfig(corpus)), "--out", tokensOut,
        ])
        #expect(reference.status == 0, "\(reference.stderr)")
        // The stream: the tokens parts in order, the very last separator dropped.
        var stream: [Int] = []
        for part in 0..<100
        where FileManager.default.fileExists(atPath: tokensOut + "/tokens/part-\(fiveDigits(part)).lz4") {
            stream += try tokenIDs(tokensOut + "/tokens/part-\(fiveDigits(part)).lz4")
        }
        stream.removeLast()
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json")))
                as? [String: Any])
        #expect(manifest["shards_kind"] as? String == "tokens")
        let shards = try #require(manifest["shards"] as? [[String: Any]])
        var stored: [Int] = []
        for shard in shards { stored += try tokenIDs(out + "/" + (shard["file"] as? String ?? "")) }
        #expect(stored == stream)
        // lz4 -d turns a shard into a flat .bin; lz4 -t checks it on its own.
        #expect(try Shell.run("lz4 -tq \(out)/shards/tokens-00000.lz4").status == 0)
        let index = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out + "/shards/documents.idx")))
        let starts = stride(from: 0, to: index.count, by: 8).map { offset in
            (0..<8).reduce(0) { $0 | Int(index[offset + $1]) << (8 * $1) }
        }
        let separators = stream.indices.filter { stream[$0] == 50256 }
        #expect(starts == [0] + separators.map { $0 + 1 })
        #expect(try SluiceBinary.run(["verify", out]).status == 0)
    }

    @Test("sluice verify names a damaged token shard and a damaged document index")
    func verifyCatchesDamage() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let out = directory.path("out")
        #expect(try SluiceBinary.run(["run", try writeConfig(directory, config(corpus)), "--out", out]).status == 0)
        for file in ["shards/documents.idx", "shards/tokens-00000.lz4"] {
            let path = out + "/" + file
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 1
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let result = try SluiceBinary.run(["verify", out])
            #expect(result.status == 1)
            #expect(result.stdoutText.contains(file) || result.stderr.contains(file), "\(result.stderr)")
            bytes[bytes.count / 2] ^= 1
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }
        let inspect = try SluiceBinary.run(["inspect", out, "--batch", "0"])
        #expect(inspect.status != 0 && inspect.stderr.contains("SluiceDataset"))
    }

    @Test("config check refuses token shards with embeddings, a prepared shuffle, or no window")
    func configRules() throws {
        let directory = try TemporaryDirectory()
        let cases: [(String, String)] = [
            (config("x", extra: #", "embedding": {"output_dim": 4}"#), "embeddings need \\\"batches\\\""),
            (config("x", window: #"{"shuffle": true}"#), "shuffled at read time"),
            (
                #"{"inputs": ["x"], "tokenizer": {"vocab": "v"}, "shards": {"kind": "tokens"}}"#,
                "add a \\\"window\\\" section"
            ),
        ]
        for (text, message) in cases {
            let result = try SluiceBinary.run(["config", "check", try writeConfig(directory, text)])
            #expect(result.status != 0)
            #expect(
                (result.stderr + result.stdoutText).replacingOccurrences(of: "\"", with: "\\\"").contains(message),
                "\(result.stderr)")
        }
    }

    func fiveDigits(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 5 - text.count)) + text
    }

    @Test(
        "a validation split: its own shards of either kind, checked by sluice verify", arguments: ["tokens", "batches"])
    func validationSplit(kind: String) throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let out = directory.path("out")
        let text = config(corpus, extra: #", "split": {"validation_documents": 3, "seed": 1}"#)
            .replacingOccurrences(of: #""kind": "tokens""#, with: "\"kind\": \"\(kind)\"")
        let result = try SluiceBinary.run(["run", try writeConfig(directory, text), "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json")))
                as? [String: Any])
        let validation = try #require((manifest["splits"] as? [String: Any])?["validation"] as? [String: Any])
        #expect((validation["totals"] as? [String: Any])?["documents"] as? Int == 3)
        let shards = try #require(validation["shards"] as? [[String: Any]])
        #expect(
            !shards.isEmpty && shards.allSatisfy { ($0["file"] as? String)?.hasPrefix("validation/shards/") == true })
        #expect(try SluiceBinary.run(["verify", out]).status == 0)
        let path = out + "/" + (shards[0]["file"] as? String ?? "")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = try SluiceBinary.run(["verify", out])
        #expect(damaged.status == 1 && damaged.stdoutText.contains("validation/shards/"), "\(damaged.stdoutText)")
        let both = try SluiceBinary.run([
            "config", "check",
            try writeConfig(
                directory, name: "both.json",
                config(corpus, extra: #", "split": {"validation_documents": 3, "validation_fraction": 0.5}"#)),
        ])
        #expect(both.status != 0 && both.stderr.contains("not both"), "\(both.stderr)")
    }
}
