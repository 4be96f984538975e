import Foundation

/// Where everything lives under the output directory (docs/FORMATS.md).
public struct OutputLayout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public var docsDirectory: String { root + "/docs" }
    public var tokensDirectory: String { root + "/tokens" }
    public var workDirectory: String { root + "/_work" }
    public var runRecord: String { workDirectory + "/run.json" }
    public var report: String { root + "/report.json" }
    public var shardsDirectory: String { root + "/shards" }
    public var tablesDirectory: String { root + "/tables" }
    public var manifest: String { root + "/manifest.json" }
    public var tokenizer: String { root + "/tokenizer.tiktoken" }
    /// The input files the run's tasks were cut from.
    public var recordedInputs: String { workDirectory + "/inputs.json" }
    /// The run's tokenizer as a tiktoken rank file plus its special tokens, for the workers.
    public var workTokenizer: String { workDirectory + "/tokenizer.tiktoken" }
    public var workTokenizerRecord: String { workDirectory + "/tokenizer.json" }
    public var wordCountsDirectory: String { workDirectory + "/wordcounts" }
    public func wordCounts(_ part: Int) -> String { wordCountsDirectory + "/" + Plan.partName(part) + ".counts" }
    public func wordCountsSidecar(_ part: Int) -> String { wordCountsDirectory + "/" + Plan.partName(part) + ".json" }
    /// The window task's completion record.
    public var windowSidecar: String { workDirectory + "/window.json" }
    /// The global token stream as flat little-endian ids.
    public var streamFile: String { workDirectory + "/stream.ids" }
    /// Window starts in sample order, Int64 little-endian.
    public var windowsFile: String { workDirectory + "/windows.i64" }
    public var shardRecordsDirectory: String { workDirectory + "/shards" }
    public func shardRecord(_ shard: Int) -> String {
        shardRecordsDirectory + "/"
            + MaterializeStage.shardName(shard).replacingOccurrences(
                of: ".safetensors.lz4", with: ".json")
    }

    public func docsPart(_ part: Int) -> String { docsDirectory + "/" + Plan.partName(part) + ".lz4" }
    public func docsSidecar(_ part: Int) -> String { docsDirectory + "/" + Plan.partName(part) + ".json" }
    public func tokensPart(_ part: Int) -> String { tokensDirectory + "/" + Plan.partName(part) + ".lz4" }
    public func tokensDocumentLengths(_ part: Int) -> String {
        tokensDirectory + "/" + Plan.partName(part) + ".doc-tokens.lz4"
    }
    public func tokensSidecar(_ part: Int) -> String { tokensDirectory + "/" + Plan.partName(part) + ".json" }
}

/// Deterministic JSON for everything Sluice writes: sorted keys, 2-space indent, final newline.
public enum StableJSON {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value)) + [0x0A]
    }

    public static func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
