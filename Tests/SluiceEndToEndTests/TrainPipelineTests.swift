import Foundation
import SluiceBPE
import SluiceIO
import SluiceIngest
import SluiceTestSupport
import Testing

@Suite("tokenizer.train: the vocabulary learned inside the pipeline")
struct TrainPipelineTests {
    @Test("the pipeline's trained vocabulary equals sluice train-bpe's on the same documents; tokens round-trip")
    func trainedInPipeline() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let config = try writeConfig(
            directory,
            """
            {"inputs": ["\(corpus)"], "ingest": {"part_bytes": 300},
             "tokenizer": {"train": {"vocab_size": 280, "min_frequency": 2}, "special_tokens": {"<|endoftext|>": 279}},
             "window": {"max_length": 4, "stride": 4, "batch_size": 2}}
            """)
        var outputs: [[String: [UInt8]]] = []
        for workers in [1, 2] {
            let out = directory.path("out-\(workers)")
            let result = try SluiceBinary.run(["run", config, "--out", out, "--workers", String(workers)])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append(try outputFiles(out))
        }
        #expect(outputs[0] == outputs[1])
        let trained = directory.path("train-bpe")
        let standalone = try SluiceBinary.run([
            "train-bpe", corpus, "--vocab-size", "280", "--min-frequency", "2", "--special-token", "<|endoftext|>",
            "--out", trained,
        ])
        #expect(standalone.status == 0, "\(standalone.stderr)")
        let pipelineRanks = try #require(outputs[0]["tokenizer.tiktoken"])
        #expect(pipelineRanks == [UInt8](try Data(contentsOf: URL(fileURLWithPath: trained + "/vocab.tiktoken"))))

        // Every docs part decodes back from its tokens part with the trained vocabulary.
        let out = directory.path("out-1")
        let encoder = try BPEEncoder(
            vocabulary: Vocabulary.load(tiktokenFile: out + "/tokenizer.tiktoken"),
            specialTokens: ["<|endoftext|>": 279])
        var part = 0
        while FileManager.default.fileExists(atPath: out + "/docs/part-\(String(format: "%05d", part)).lz4") {
            let name = "part-\(String(format: "%05d", part))"
            let reader = try DocsPart.Reader(path: out + "/docs/\(name).lz4")
            var documents: [UInt8] = []
            while let document = try reader.next() { documents += document + Array("<|endoftext|>".utf8) }
            let ids = try tokenIDs(out + "/tokens/\(name).lz4")
            #expect(try encoder.decode(ids.map { UInt32($0) }) == documents, "\(name)")
            part += 1
        }
        #expect(part >= 3)

        // A re-run trains nothing again.
        let again = try SluiceBinary.run(["run", config, "--out", out, "--log", "text"])
        #expect(again.stderr.contains("tokenizer: already trained"), "\(again.stderr)")
    }

    @Test("with train, special token ids must follow the learned ranks; the error says what to write")
    func specialIDsFollowRanks() throws {
        let directory = try TemporaryDirectory()
        let config = try writeConfig(
            directory, "{\"inputs\": [\"x\"], \"tokenizer\": {\"train\": {\"vocab_size\": 1000}}}")
        let result = try SluiceBinary.run(["config", "check", config])
        #expect(result.status == 1)
        #expect(result.stderr.contains("write {\"<|endoftext|>\": 999}"), "\(result.stderr)")
        let both = try writeConfig(
            directory, name: "both.json",
            "{\"inputs\": [\"x\"], \"tokenizer\": {\"vocab\": \"v\", \"train\": {\"vocab_size\": 1000}}}")
        #expect(try SluiceBinary.run(["config", "check", both]).stderr.contains("not both"))
        let neither = try writeConfig(directory, name: "neither.json", "{\"inputs\": [\"x\"], \"tokenizer\": {}}")
        #expect(try SluiceBinary.run(["config", "check", neither]).stderr.contains("or \"train\""))
    }
}
