import Foundation
import SluiceIO
import SluiceTestSupport
import Testing

/// Every file under `root` except `_work/`, with its bytes: what "byte-identical output" means.
/// report.json's "timing" (wall and CPU seconds, RSS) is the one part that may differ, and is left out.
/// Every file of an output but `_work/`, with `report.json`'s timing taken out.
/// - Parameter timing: whether the report must have timing (a run's does; finalize run alone, not).
func outputFiles(_ root: String, timing: Bool = true) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    let enumerator = FileManager.default.enumerator(atPath: root)
    while let relative = enumerator?.nextObject() as? String {
        guard !relative.hasPrefix("_work") else { continue }
        var isDirectory: ObjCBool = false
        let path = root + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            files[relative] = relative == "report.json" ? try withoutTiming(bytes, required: timing) : bytes
        }
    }
    return files
}

/// A report with its "timing" member removed (and nothing else changed).
func withoutTiming(_ report: [UInt8], required: Bool = true) throws -> [UInt8] {
    guard var object = try JSONSerialization.jsonObject(with: Data(report)) as? [String: Any] else {
        throw ShellError(description: "report.json is not a JSON object")
    }
    #expect((object["timing"] != nil) == required, "report.json's timing")
    object["timing"] = nil
    return [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
}

/// Little-endian UInt16 ids of an LZ4 tokens part.
func tokenIDs(_ path: String) throws -> [Int] {
    let bytes = try LZ4FrameReader(path: path).readAll()
    return stride(from: 0, to: bytes.count, by: 2).map { Int(bytes[$0]) | Int(bytes[$0 + 1]) << 8 }
}

/// A small mixed corpus: text files, a tar.gz, a zip, JSONL (with a bad line), a .gz file.
func makeMixedCorpus(_ directory: TemporaryDirectory) throws -> String {
    try directory.write("corpus/notes/one.txt", "The first note. It's short.\n")
    try directory.write("corpus/notes/two.txt", "Second note — with “quotes” and café.\r\n")
    try directory.write(
        "corpus/records.jsonl",
        "{\"text\": \"record one\"}\n{\"text\": \"record two\"}\nnot json\n{\"text\": \"record three\"}\n")
    try directory.write("pack/a.txt", String(repeating: "archived alpha text. ", count: 200))
    try directory.write("pack/b.txt", "archived beta\n")
    try Shell.must(
        "tar -czf corpus/pack.tar.gz -C pack a.txt b.txt && cd pack && zip -q -X ../corpus/pack.zip b.txt a.txt && cd .. && printf 'gzipped doc\\n' | gzip > corpus/single.txt.gz",
        in: directory.url.path)
    return directory.url.appendingPathComponent("corpus").path
}

func writeConfig(_ directory: TemporaryDirectory, name: String = "pipeline.json", _ text: String) throws -> String {
    try directory.write(name, text)
}

/// A tiktoken rank file of the 256 single bytes (ids 0…255, no merges), built at test time.
@discardableResult
func writeByteRanks(_ directory: TemporaryDirectory) throws -> String {
    try directory.write(
        "bytes.tiktoken", (0..<256).map { "\(Data([UInt8($0)]).base64EncodedString()) \($0)\n" }.joined())
}

let vocabDirectory = Fixtures.repositoryRoot.appendingPathComponent("vocab/gpt2").path

/// The mixed corpus in parts of ~200 input bytes (so there are several), tokenized with GPT-2.
func tokenizedCorpusConfig(_ corpus: String) -> String {
    """
    {"inputs": ["\(corpus)"], "ingest": {"part_bytes": 200},
     "tokenizer": {"vocab": "\(vocabDirectory)/encoder.json", "merges": "\(vocabDirectory)/vocab.bpe"}}
    """
}

@Suite("sluice run, end to end", .serialized)
struct RunTests {
    @Test(
        "the demo pipeline gives the-verdict's 5,145 tiktoken ids, then the separator",
        .enabled(if: Fixtures.hasShared, "needs ../shared (the tiktoken goldens), which is not beside the repository"))
    func verdictPipeline() throws {
        try #require(
            FileManager.default.fileExists(atPath: vocabDirectory + "/encoder.json"),
            "run scripts/setup.sh (it fetches vocab/gpt2)")
        let directory = try TemporaryDirectory()
        let out = directory.path("out")
        let config = Fixtures.repositoryRoot.appendingPathComponent("pipelines/verdict-tokens.json").path
        let result = try SluiceBinary.run(["run", config, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains("tokens     5145"))
        let golden = try #require(
            try Fixtures.json(Fixtures.shared("golden/torch/verdict_tokens.json")) as? [String: Any])
        let ids = try #require(golden["token_ids"] as? [Int])
        #expect(try tokenIDs(out + "/tokens/part-00000.lz4") == ids + [50256])
        let text = try [UInt8](Data(contentsOf: Fixtures.shared("corpus/the-verdict.txt")))
        let docs = try LZ4FrameReader(path: out + "/docs/part-00000.lz4").readAll()
        #expect(docs == withUnsafeBytes(of: UInt64(text.count).littleEndian, Array.init) + text)
    }

    @Test("output is byte-identical for 1, 2 and 4 workers")
    func workerCountDoesNotMatter() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let config = try writeConfig(directory, tokenizedCorpusConfig(corpus))
        var outputs: [[String: [UInt8]]] = []
        for workers in [1, 2, 4] {
            let out = directory.path("out-\(workers)")
            let result = try SluiceBinary.run(["run", config, "--out", out, "--workers", String(workers)])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append(try outputFiles(out))
        }
        #expect(outputs[0].keys.filter { $0.hasPrefix("docs/part-") }.count >= 4)
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0] == outputs[2])
        let report = try String(contentsOfFile: directory.path("out-1") + "/report.json", encoding: .utf8)
        #expect(report.contains("\"malformed_jsonl\""))
        #expect(report.contains("\"documents\" : 10"))
    }

    @Test("a re-run redoes only damaged or missing tasks, and ends byte-identical")
    func resume() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let config = try writeConfig(directory, tokenizedCorpusConfig(corpus))
        let out = directory.path("out")
        #expect(try SluiceBinary.run(["run", config, "--out", out]).status == 0)
        let first = try outputFiles(out)
        try FileManager.default.removeItem(atPath: out + "/tokens/part-00001.lz4")
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: out + "/docs/part-00002.lz4"))
        try FileManager.default.removeItem(atPath: out + "/docs/part-00000.json")
        let again = try SluiceBinary.run(["run", config, "--out", out, "--workers", "3"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("ingest part-00003: already done"))
        #expect(!again.stderr.contains("ingest part-00002: already done"))
        #expect(try outputFiles(out) == first)
    }

    @Test("a changed config reuses what it can and ends as a fresh run would; foreign directories are refused")
    func changedConfig() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let configA = try writeConfig(directory, name: "a.json", "{\"inputs\": [\"\(corpus)\"]}")
        let configB = try writeConfig(
            directory, name: "b.json", "{\"inputs\": [\"\(corpus)\"], \"ingest\": {\"newlines\": \"lf\"}}")
        let out = directory.path("out")
        #expect(try SluiceBinary.run(["run", configA, "--out", out]).status == 0)
        // An ingest setting is part of every ingest task's identity: all of them are redone.
        let changed = try SluiceBinary.run(["run", configB, "--out", out, "--log", "text"])
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(!changed.stderr.contains("already done"), "\(changed.stderr)")
        let fresh = directory.path("fresh")
        #expect(try SluiceBinary.run(["run", configB, "--out", fresh]).status == 0)
        #expect(try outputFiles(out) == (try outputFiles(fresh)))
        #expect(try SluiceBinary.run(["run", configA, "--out", out, "--force"]).status == 0)
        try directory.write("foreign/keep-me.txt", "precious")
        let foreign = try SluiceBinary.run(["run", configA, "--out", directory.path("foreign")])
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("not made by sluice"))
        #expect(FileManager.default.fileExists(atPath: directory.path("foreign/keep-me.txt")))
    }

    @Test("--strict exits 3 when something was skipped; on_bad_input \"fail\" stops naming file and line")
    func strictAndFail() throws {
        let directory = try TemporaryDirectory()
        let corpus = try makeMixedCorpus(directory)
        let config = try writeConfig(directory, "{\"inputs\": [\"\(corpus)\"]}")
        let strict = try SluiceBinary.run(["run", config, "--out", directory.path("out"), "--strict"])
        #expect(strict.status == 3, "\(strict.stderr)")
        #expect(strict.stdoutText.contains("1 × malformed_jsonl"))
        let failing = try writeConfig(
            directory, name: "fail.json", "{\"inputs\": [\"\(corpus)\"], \"ingest\": {\"on_bad_input\": \"fail\"}}")
        let failed = try SluiceBinary.run(["run", failing, "--out", directory.path("out-fail")])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("records.jsonl:3: not valid JSON"), "\(failed.stderr)")
        #expect(!failed.stderr.contains("Fatal error"))
    }

    @Test(
        "a partial input exits 4 and is marked in report, manifest and verify; on_truncated_input keep exits 0; --strict passes a clean tar"
    )
    func partialInputs() throws {
        let directory = try TemporaryDirectory()
        try directory.write("src/a.txt", String(repeating: "alpha words and more words ", count: 4000))
        try directory.write("src/b.txt", String(repeating: "beta words, other words ", count: 40000))
        try Shell.must(
            "tar -czf whole.tar.gz -C src a.txt b.txt && tar -cf clean.tar -C src a.txt", in: directory.url.path)
        let whole = try [UInt8](Data(contentsOf: directory.url.appendingPathComponent("whole.tar.gz")))
        try directory.write("corpus/cut.tar.gz", Array(whole[..<(whole.count * 2 / 3)]))

        let tokenizer =
            "\"tokenizer\": {\"vocab\": \"\(vocabDirectory)/encoder.json\", \"merges\": \"\(vocabDirectory)/vocab.bpe\"}, \"window\": {\"max_length\": 4, \"stride\": 4, \"batch_size\": 8}, \"embedding\": {\"output_dim\": 4}"
        let config = try writeConfig(directory, "{\"inputs\": [\"\(directory.path("corpus"))\"], \(tokenizer)}")
        let run = try SluiceBinary.run(["run", config, "--out", directory.path("out")])
        #expect(run.status == 4, "\(run.stderr)")
        #expect(run.stderr.contains("cut.tar.gz") || run.stdoutText.contains("cut.tar.gz"))
        let manifest = try #require(
            try Fixtures.json(URL(fileURLWithPath: directory.path("out/manifest.json"))) as? [String: Any])
        let partial = try #require(manifest["partial_inputs"] as? [[String: Any]])
        #expect(partial.count == 1)
        #expect((partial.first?["file"] as? String)?.hasSuffix("cut.tar.gz") == true)
        let report = try #require(
            try Fixtures.json(URL(fileURLWithPath: directory.path("out/report.json"))) as? [String: Any])
        #expect(((report["ingest"] as? [String: Any])?["partial_inputs"] as? [Any])?.count == 1)
        let verify = try SluiceBinary.run(["verify", directory.path("out")])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stderr.contains("warning:") && verify.stderr.contains("cut.tar.gz"), "\(verify.stderr)")

        let keep = try writeConfig(
            directory, name: "keep.json",
            "{\"inputs\": [\"\(directory.path("corpus"))\"], \(tokenizer), \"ingest\": {\"on_truncated_input\": \"keep\"}}"
        )
        let kept = try SluiceBinary.run(["run", keep, "--out", directory.path("out-keep")])
        #expect(kept.status == 0, "\(kept.stderr)")
        let keptManifest = try #require(
            try Fixtures.json(URL(fileURLWithPath: directory.path("out-keep/manifest.json"))) as? [String: Any])
        #expect((keptManifest["partial_inputs"] as? [Any])?.count == 1)

        let clean = try writeConfig(directory, name: "clean.json", "{\"inputs\": [\"\(directory.path("clean.tar"))\"]}")
        let strict = try SluiceBinary.run(["run", clean, "--out", directory.path("out-clean"), "--strict"])
        #expect(strict.status == 0, "\(strict.stderr)")
    }

    @Test("ids past 65,535 are stored as UInt32, and the part says so")
    func wideIDs() throws {
        let directory = try TemporaryDirectory()
        try writeByteRanks(directory)
        try directory.write("corpus/a.txt", "ab")
        try directory.write("corpus/b.txt", "c")
        let config = try writeConfig(
            directory,
            """
            {"inputs": ["corpus"], "tokenizer": {"vocab": "bytes.tiktoken",
             "special_tokens": {"<|sep|>": 70000}, "document_separator": "<|sep|>"}}
            """)
        let out = directory.path("out")
        let result = try SluiceBinary.run(["run", config, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let bytes = try LZ4FrameReader(path: out + "/tokens/part-00000.lz4").readAll()
        let ids = stride(from: 0, to: bytes.count, by: 4).map {
            UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24
        }
        #expect(ids == [97, 98, 70000, 99, 70000])
        let sidecar = try String(contentsOfFile: out + "/tokens/part-00000.json", encoding: .utf8)
        #expect(sidecar.contains("\"id_bytes\" : 4"))
        #expect(result.stdoutText.contains("tokens     4 "))
    }

    @Test("cross_document false keeps every window inside one document, as GPTDatasetV1 run per document")
    func windowsInsideDocuments() throws {
        let directory = try TemporaryDirectory()
        try directory.write("corpus/1.txt", "One two three four five six seven.")
        try directory.write("corpus/2.txt", "Short.")
        try directory.write("corpus/3.txt", "Alpha beta gamma delta epsilon zeta eta theta.")
        let tokenizer =
            "\"tokenizer\": {\"vocab\": \"\(vocabDirectory)/encoder.json\", \"merges\": \"\(vocabDirectory)/vocab.bpe\"}"
        let config = try writeConfig(
            directory,
            "{\"inputs\": [\"corpus\"], \(tokenizer), \"window\": {\"max_length\": 3, \"stride\": 2, \"batch_size\": 1, \"cross_document\": false}}"
        )
        let out = directory.path("out")
        let result = try SluiceBinary.run(["run", config, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        // The reference: GPTDatasetV1 applied to each document's ids on its own.
        let stream = try tokenIDs(out + "/tokens/part-00000.lz4")
        var documents: [[Int]] = [[]]
        for id in stream {
            if id == 50256 { documents.append([]) } else { documents[documents.count - 1].append(id) }
        }
        var expected: [[Int]] = []
        for document in documents {
            for start in stride(from: 0, to: max(0, document.count - 3), by: 2) {
                expected.append(Array(document[start..<start + 3]))
            }
        }
        let shard = try LZ4FrameReader(path: out + "/shards/shard-00000.safetensors.lz4").readAll()
        let layout = try SafeTensors.layout(of: shard, path: "shard")
        let inputs = try #require(layout.tensors.first { $0.tensor.name == "inputs" })
        let values = LittleEndian.floats(
            shard[(layout.dataStart + inputs.range.lowerBound)..<(layout.dataStart + inputs.range.upperBound)]
        )
        .map { Int($0.bitPattern) }
        let rows = stride(from: 0, to: values.count, by: 3).map { Array(values[$0..<$0 + 3]) }
        #expect(!expected.isEmpty)
        #expect(rows == expected)
        #expect(!rows.contains { $0.contains(50256) })
        #expect(try SluiceBinary.run(["verify", out]).status == 0)
    }

    @Test("config check prints the resolved config; mistakes exit 1 with file:line:column")
    func configCheck() throws {
        let directory = try TemporaryDirectory()
        let good = try writeConfig(directory, name: "good.json", "{\"inputs\": [\"x\"]}")
        let ok = try SluiceBinary.run(["config", "check", good])
        #expect(ok.status == 0)
        #expect(ok.stdoutText.contains("\"max_input_bytes\": 17179869184"))
        let bad = try writeConfig(directory, name: "bad.json", "{\"inputs\": [\"x\"],\n \"worker\": 2}")
        let failed = try SluiceBinary.run(["config", "check", bad])
        #expect(failed.status == 1)
        #expect(
            failed.stderr.contains("bad.json:2:2: worker: unknown key \"worker\" — did you mean \"workers\"?"),
            "\(failed.stderr)")
    }

    @Test(
        "config check and plan load the vocabulary first: missing, not a rank file, encoder.json alone, a table below the id range"
    )
    func vocabularyCheckedEarly() throws {
        let directory = try TemporaryDirectory()
        let bytes = try writeByteRanks(directory)
        let notRanks = try directory.write("notes.txt", "hello world, not a rank file\n")
        try directory.write("x", "the input, never read by these checks\n")
        let special = #""special_tokens": {"<|endoftext|>": 256}"#
        func check(_ tokenizer: String, embedding: String? = nil) throws -> [Shell.Output] {
            var text = #"{"inputs": ["x"], "tokenizer": {\#(tokenizer)}"#
            if let embedding { text += #", "window": {}, "embedding": {\#(embedding)}"# }
            let config = try writeConfig(directory, text + "}")
            return [try SluiceBinary.run(["config", "check", config]), try SluiceBinary.run(["plan", config])]
        }
        let failures: [(String, String?, [String])] = [
            (
                #""vocab": "missing.tiktoken""#, nil,
                ["tokenizer.vocab: ", "missing.tiktoken: cannot open: No such file"]
            ),
            (#""vocab": "\#(notRanks)""#, nil, ["notes.txt:1: expected \"BASE64TOKEN RANK\"", "rank file?"]),
            (#""vocab": "\#(vocabDirectory)/encoder.json""#, nil, ["encoder.json:1: this is JSON", "add merges"]),
            (
                #""vocab": "\#(vocabDirectory)/encoder.json", "merges": "nope.bpe""#, nil,
                ["tokenizer.merges: ", "nope.bpe: cannot open"]
            ),
            (
                #""vocab": "\#(bytes)", "special_tokens": {"<|endoftext|>": 7}"#, nil,
                ["tokenizer.vocab: ", "has id 7, which is already an ordinary token (ranks 0 ..< 256)"]
            ),
            (
                #""vocab": "\#(bytes)", \#(special)"#, #""vocab_size": 256"#,
                [
                    "embedding.vocab_size is 256, but the tokenizer (",
                    "gives ids up to 256; set vocab_size to at least 257",
                ]
            ),
            (
                #""train": {"vocab_size": 1000}, "special_tokens": {"<|endoftext|>": 999}"#, #""vocab_size": 300"#,
                ["embedding.vocab_size is 300, but tokenizer.train.vocab_size gives ids up to 999"]
            ),
        ]
        for (tokenizer, embedding, messages) in failures {
            for result in try check(tokenizer, embedding: embedding) {
                #expect(result.status == 1, "\(tokenizer): \(result.stdoutText)")
                let lines = result.stderr.split(separator: "\n")
                #expect(lines.count == 1, "\(result.stderr)")
                for message in messages { #expect(result.stderr.contains(message), "\(result.stderr)") }
            }
        }
        for result in try check(#""vocab": "\#(bytes)", \#(special)"#, embedding: #""vocab_size": 257"#) {
            #expect(result.status == 0, "\(result.stderr)")
        }
    }
}

@Suite(
    "sluice encode / decode",
    .enabled(if: Fixtures.hasShared, "needs ../shared (the rank file and goldens), which is not beside the repository"))
struct EncodeCommandTests {
    let vocab = Fixtures.gpt2RankFile

    @Test("encode matches the tiktoken goldens; decode gives the bytes back")
    func goldens() throws {
        let records = try Fixtures.jsonLines(Fixtures.shared("golden/gpt2-tokens.jsonl")).compactMap {
            $0 as? [String: Any]
        }
        let sample = records.enumerated().filter { $0.offset % 25 == 0 }.map(\.element)
        for record in sample {
            let text = try #require(record["text"] as? String)
            let ids = try #require(record["ids"] as? [Int])
            let result = try SluiceBinary.run(["encode", "--vocab", vocab], input: Array(text.utf8))
            #expect(result.status == 0)
            #expect(result.stdoutText == "[" + ids.map(String.init).joined(separator: ", ") + "]\n", "text: \(text)")
            let decoded = try SluiceBinary.run(["decode", "--vocab", vocab], input: Array(result.stdout))
            #expect(decoded.stdout == Array(text.utf8))
        }
    }

    @Test("invalid UTF-8 is replaced by default, or fails naming the byte offset")
    func invalidInput() throws {
        let replaced = try SluiceBinary.run(["encode", "--vocab", vocab], input: [0x61, 0xFF, 0x62])
        let expected = try SluiceBinary.run(["encode", "--vocab", vocab], input: Array("a\u{FFFD}b".utf8))
        #expect(replaced.status == 0)
        #expect(replaced.stdoutText == expected.stdoutText)
        let failed = try SluiceBinary.run(
            ["encode", "--vocab", vocab, "--invalid-utf8", "fail"], input: [0x61, 0xFF, 0x62])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("invalid UTF-8 at byte 1"))
    }

    @Test("special tokens are text unless allowed; unknown ids are a clear error")
    func specialTokens() throws {
        // tiktoken's encode_ordinary of the special token's text, from the golden file.
        let records = try Fixtures.jsonLines(Fixtures.shared("golden/gpt2-tokens.jsonl")).compactMap {
            $0 as? [String: Any]
        }
        let golden = try #require(records.first { $0["text"] as? String == "<|endoftext|>" }?["ids"] as? [Int])
        let ordinary = try SluiceBinary.run(["encode", "--vocab", vocab], input: Array("<|endoftext|>".utf8))
        #expect(ordinary.stdoutText == "[" + golden.map(String.init).joined(separator: ", ") + "]\n")
        // Allowed, it is its id; the text before it is encoded as ordinary text.
        let prefix = try SluiceBinary.run(["encode", "--vocab", vocab], input: Array("a".utf8)).stdoutText
        let allowed = try SluiceBinary.run(
            ["encode", "--vocab", vocab, "--allow-special"], input: Array("a<|endoftext|>".utf8))
        #expect(allowed.stdoutText == prefix.dropLast(2) + ", 50256]\n")
        let bad = try SluiceBinary.run(["decode", "--vocab", vocab], input: Array("[1, 70000]".utf8))
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("id 70000 at position 1"))
    }
}

@Suite("sluice plan / worker")
struct WorkerTests {
    @Test("every planned task id runs through sluice worker --task ID, and the result is sluice run's, byte for byte")
    func workersEqualRun() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let byWorkers = directory.path("workers")
        let prepared = try SluiceBinary.run(["plan", config, "--out", byWorkers, "--write", "--json"])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        // What sluice plan prints is the plan file, written by the same encoder.
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: byWorkers + "/_work/plan.json"))) == prepared.stdout)
        let early = try SluiceBinary.run(["worker", "--task", "tokenize/part-00000", byWorkers])
        #expect(early.status == 65, "\(early.stderr)")  // a retry cannot fix it: not retried by sluice run
        #expect(early.stderr.contains("needs ingest/part-00000 first"), "\(early.stderr)")
        func plannedIDs() throws -> [String] {
            let plan = try SluiceBinary.run(["plan", config, "--out", byWorkers, "--json"])
            guard case .array(let tasks)? = try JSONNode.parse(plan.stdout)["tasks"]?.value else { return [] }
            return tasks.compactMap { $0["id"]?.string }
        }
        var ran: [String] = []
        // Until the window task has run, the plan cannot list the materialize tasks.
        var ids = try plannedIDs()
        #expect(!ids.contains { $0.hasPrefix("materialize/") })
        while let next = ids.first(where: { !ran.contains($0) }) {
            let result = try SluiceBinary.run(["worker", "--task", next, byWorkers])
            #expect(result.status == 0, "\(next): \(result.stderr)")
            ran.append(next)
            if next == "window" { ids = try plannedIDs() }
        }
        #expect(ran.filter { $0.hasPrefix("materialize/shard-") }.count >= 3)
        #expect(ran.last == "finalize")
        let byRun = directory.path("run")
        #expect(try SluiceBinary.run(["run", config, "--out", byRun]).status == 0)
        var runFiles = try outputFiles(byRun)
        var workerFiles = try outputFiles(byWorkers, timing: false)
        #expect(runFiles.removeValue(forKey: "report.json") == workerFiles.removeValue(forKey: "report.json"))
        #expect(runFiles.keys.sorted() == workerFiles.keys.sorted())
        #expect(runFiles == workerFiles)
        // sluice run over the workers' directory reuses every task they finished.
        let assemble = try SluiceBinary.run(["run", config, "--out", byWorkers, "--log", "text"])
        #expect(assemble.status == 0, "\(assemble.stderr)")
        #expect(
            assemble.stderr.components(separatedBy: "already done").count - 1 == ran.count - 1, "\(assemble.stderr)")
    }

    @Test("sluice worker names a task it cannot find, and an unprepared directory")
    func workerErrors() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let out = directory.path("out")
        let unprepared = try SluiceBinary.run(["worker", "--task", "window", out])
        #expect(unprepared.status == 65)
        #expect(unprepared.stderr.contains("sluice plan CONFIG --out"), "\(unprepared.stderr)")
        #expect(try SluiceBinary.run(["plan", config, "--out", out, "--write"]).status == 0)
        let missing = try SluiceBinary.run(["worker", "--task", "ingest/part-00999", out])
        #expect(missing.status == 65)
        #expect(missing.stderr.contains("ingest/part-00999 is not in the plan"), "\(missing.stderr)")
        let malformed = try SluiceBinary.run(["worker", "--task", "ingest/3", out])
        #expect(malformed.status == 64)
        #expect(malformed.stderr.contains("not a task id"), "\(malformed.stderr)")
    }
}
