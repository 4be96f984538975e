import Foundation
import SluiceConfig
import SluiceIO
import SluiceTestSupport
import Testing

/// `"extends"`: presets merged section by section, their paths rebased, errors naming the file
/// each key came from.
@Suite("Config presets")
struct PresetTests {
    func load(_ directory: TemporaryDirectory, _ name: String) throws(ConfigError) -> Configuration {
        try Configuration.load(file: directory.path(name))
    }

    @Test("presets merge in order under the config, objects key by key, paths relative to the preset")
    func mergeAndRebase() throws {
        let directory = try TemporaryDirectory()
        try directory.write(
            "configs/tokenizer.json", #"{"tokenizer": {"vocab": "../vocab/enc.json", "merges": "../vocab/m.bpe"}}"#)
        try directory.write(
            "configs/sizes.json",
            #"{"extends": ["tokenizer.json"], "window": {"max_length": 16, "stride": 8, "batch_size": 2}}"#)
        try directory.write(
            "pipelines/run.json",
            #"{"extends": ["../configs/sizes.json"], "inputs": ["../data"], "window": {"stride": 4}}"#)
        let configuration = try load(directory, "pipelines/run.json")
        #expect(configuration.window?.maxLength == 16 && configuration.window?.stride == 4)
        #expect(configuration.window?.batchSize == 2)
        // tokenizer.vocab was relative to configs/: now relative to pipelines/, the same file.
        #expect(configuration.resolved["tokenizer"]?["vocab"]?.string == "../vocab/enc.json")
        #expect(configuration.resolved["extends"] == nil)
        // The same config written out in full has the same identity.
        try directory.write(
            "pipelines/inline.json",
            #"{"inputs": ["../data"], "tokenizer": {"vocab": "../vocab/enc.json", "merges": "../vocab/m.bpe"}, "window": {"max_length": 16, "stride": 4, "batch_size": 2}}"#
        )
        #expect(try load(directory, "pipelines/inline.json").outputDefiningSHA256 == configuration.outputDefiningSHA256)
        // Workers load the merged text, without extends.
        let merged = try Configuration.decode(
            configuration.text, file: "merged", baseDirectory: directory.path("pipelines"))
        #expect(merged.outputDefiningSHA256 == configuration.outputDefiningSHA256)
        #expect(merged.resolved["tokenizer"]?["vocab"]?.string == "../vocab/enc.json")
    }

    @Test("a preset in another directory keeps its paths pointing at the same files")
    func rebaseAcrossDirectories() throws {
        let directory = try TemporaryDirectory()
        try directory.write("a/b/preset.json", #"{"inputs": ["corpus/*.txt"], "output": "out"}"#)
        try directory.write("c/run.json", #"{"extends": ["../a/b/preset.json"]}"#)
        let configuration = try load(directory, "c/run.json")
        #expect(configuration.inputs == ["../a/b/corpus/*.txt"])
        #expect(configuration.resolvePath(configuration.output) == directory.path("a/b/out"))
    }

    @Test("errors name the preset a bad key came from, a missing preset, and a cycle")
    func errors() throws {
        let directory = try TemporaryDirectory()
        try directory.write("configs/bad.json", "{\n  \"window\": {\"max_lenght\": 4}\n}")
        try directory.write("p/a.json", #"{"extends": ["../configs/bad.json"], "inputs": ["x"]}"#)
        try directory.write("p/b.json", #"{"extends": ["../configs/none.json"], "inputs": ["x"]}"#)
        try directory.write("configs/c1.json", #"{"extends": ["c2.json"]}"#)
        try directory.write("configs/c2.json", #"{"extends": ["c1.json"]}"#)
        try directory.write("p/c.json", #"{"extends": ["../configs/c1.json"], "inputs": ["x"]}"#)
        try directory.write(
            "p/d.json", #"{"extends": "../configs/bad.json", "inputs": ["x"], "window": {"max_lenght": 8}}"#)
        func message(_ name: String) -> String {
            do {
                _ = try load(directory, name)
                return "<accepted>"
            } catch {
                return error.description
            }
        }
        #expect(
            message("p/a.json").hasPrefix(directory.path("configs/bad.json") + ":2:14: window.max_lenght: unknown key"),
            "\(message("p/a.json"))")
        #expect(message("p/b.json").contains("cannot read the preset \(directory.path("configs/none.json"))"))
        #expect(message("p/c.json").contains("extends itself"))
        // The config's own value wins, so its own file is named.
        #expect(message("p/d.json").hasPrefix(directory.path("p/d.json") + ":"), "\(message("p/d.json"))")
    }

    @Test("the bundled pipelines built on configs/ resolve exactly as before")
    func bundledPipelines() throws {
        let root = Fixtures.repositoryRoot.path
        let book = try Configuration.load(file: root + "/pipelines/verdict-ch02.json")
        let inline = try Configuration.decode(
            Array(
                #"""
                {"inputs": ["../examples/the-verdict.txt"], "output": "../demo-out/verdict-ch02",
                 "tokenizer": {"vocab": "../vocab/gpt2/encoder.json", "merges": "../vocab/gpt2/vocab.bpe"},
                 "window": {"max_length": 4, "stride": 4, "batch_size": 8, "shuffle": false, "seed": 123, "drop_last": true},
                 "embedding": {"output_dim": 256, "context_length": 4, "init": "torch", "seed": 123, "dtype": "float32"}}
                """#.utf8), file: "inline", baseDirectory: root + "/pipelines")
        #expect(book.outputDefiningSHA256 == inline.outputDefiningSHA256)
        let small = try Configuration.load(file: root + "/pipelines/gpt2-small.json")
        #expect(small.embedding?.vocabSize == 50257 && small.embedding?.outputDim == 768)
        #expect(small.window?.maxLength == 1024 && small.embedding?.contextLength == 1024)
        #expect(small.embedding?.dtype == "bfloat16" && small.window?.shuffle == .seeded)
    }
}
