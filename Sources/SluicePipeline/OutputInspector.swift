import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceWords

/// `sluice inspect OUT [--batch K]`: a readable summary of an output directory, and one batch
/// decoded back to text with the tokenizer stored beside it.
public enum OutputInspector {
    public static func describe(root: String, batch: Int?) throws -> String {
        let layout = OutputLayout(root: root)
        guard let data = FileManager.default.contents(atPath: layout.manifest) else {
            throw PipelineError(
                .missingInput, "\(layout.manifest): missing; run sluice run with a \"window\" section first")
        }
        let manifest = try JSONNode.parse([UInt8](data))
        func int(_ node: JSONNode?) -> Int { if case .integer(let v)? = node?.value { Int(v) } else { 0 } }
        let totals = manifest["totals"]
        let window = manifest["window"]
        var lines = [
            "\(root)",
            "  documents \(int(totals?["documents"])), tokens \(int(totals?["tokens"])), windows \(int(totals?["windows"])), batches \(int(totals?["batches"]))",
            "  window    max_length \(int(window?["max_length"])), stride \(int(window?["stride"])), batch_size \(int(window?["batch_size"])), shuffle \(window?["shuffle"]?.string ?? "?")",
        ]
        if let embedding = manifest["embedding"], embedding.members != nil {
            lines.append(
                "  embedding \(embedding["dtype"]?.string ?? "?") [\(int(embedding["vocab_size"])) × \(int(embedding["output_dim"]))] + [\(int(embedding["context_length"])) × \(int(embedding["output_dim"]))], init \(embedding["init"]?.string ?? "?") seed \(embedding["seed"].flatMap(Seed.init)?.description ?? "?") (\(embedding["torch_kernel"]?.string ?? "?"))"
            )
        } else {
            lines.append("  embedding none (ids only)")
        }
        guard case .array(let shards)? = manifest["shards"]?.value else { return lines.joined(separator: "\n") }
        lines.append(
            "  shards    \(shards.count), \(int(totals?["shard_bytes"])) bytes; config SHA-256 \(manifest["config_sha256"]?.string ?? "?")"
        )
        if manifest["shards_kind"]?.string == "tokens" {
            let stream = manifest["token_stream"]
            let shardBytes = Double(int(totals?["shard_bytes"]))
            lines.append(
                "  kind      tokens: \(stream?["dtype"]?.string ?? "?") ids in LZ4 blocks, \(String(format: "%.3f", shardBytes / Double(max(1, int(totals?["tokens"]))))) bytes per id; windows are cut at read time (python/sluice_reader SluiceDataset)"
            )
            if batch != nil {
                throw PipelineError(
                    .config,
                    "\(root) stores the token stream (shards.kind \"tokens\"), not batches; read its windows with sluice_reader.SluiceDataset"
                )
            }
            return lines.joined(separator: "\n")
        }
        guard let batch else { return lines.joined(separator: "\n") }

        guard
            let shard = shards.first(where: {
                int($0["first_batch"]) <= batch && batch < int($0["first_batch"]) + int($0["batches"])
            })
        else {
            throw PipelineError(
                .config, "batch \(batch) does not exist; \(root) has batches 0 ..< \(int(totals?["batches"]))")
        }
        let path = root + "/" + (shard["file"]?.string ?? "")
        let content = try LZ4FrameReader(path: path).readAll()
        let tensors = try SafeTensors.layout(of: content, path: path)
        let batchSize = int(window?["batch_size"])
        let maxLength = int(window?["max_length"])
        let encoder: RunTokenizer
        if manifest["tokenizer"]?["kind"]?.string == "words" {
            let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: layout.wordVocabulary)))
            encoder = .words(
                WordTokenizer(wordList: file, lowercase: manifest["tokenizer"]?["lowercase"]?.bool ?? false))
        } else {
            encoder = .bpe(
                try BPEEncoder(
                    vocabulary: Vocabulary.load(tiktokenFile: layout.tokenizer), specialTokens: specialTokens(manifest))
            )
        }
        lines.append("batch \(batch) (\(shard["file"]?.string ?? "?"))")
        guard let inputs = tensors.tensors.first(where: { $0.tensor.name == "inputs" }) else {
            throw PipelineError(.damagedOutput, "\(path): no inputs tensor")
        }
        let windows = inputs.tensor.shape.first ?? 0
        let firstRow = (batch - int(shard["first_batch"])) * batchSize
        for row in firstRow..<min(firstRow + batchSize, windows) {
            var ids: [TokenID] = []
            for t in 0..<maxLength {
                let offset = tensors.dataStart + inputs.range.lowerBound + (row * maxLength + t) * 4
                ids.append(
                    UInt32(content[offset]) | UInt32(content[offset + 1]) << 8 | UInt32(content[offset + 2]) << 16
                        | UInt32(content[offset + 3]) << 24)
            }
            let text = String(decoding: encoder.decode(ids), as: UTF8.self)
            lines.append(
                "  [\(row - firstRow)] \(ids.map(String.init).joined(separator: " "))  \(JSONNode.quoted(text))")
        }
        return lines.joined(separator: "\n")
    }

    static func specialTokens(_ manifest: JSONNode) -> [String: TokenID] {
        var result: [String: TokenID] = [:]
        for (name, value) in manifest["tokenizer"]?["special_tokens"]?.members ?? [] {
            if case .integer(let id) = value.value { result[name] = TokenID(id) }
        }
        return result
    }
}
