import Foundation
import SluiceIO
import SluiceIngest

/// `sluice stats OUT`: what an output holds, from its sidecars and token counts — tokens per
/// document (percentiles and a histogram), tokens per input file, bytes per token, and what
/// ingest skipped, by reason. Reads only the small files, never the shards.
public struct OutputStats: Sendable, Codable {
    public struct Input: Sendable, Codable {
        public var file: String
        public var documents: Int
        public var tokens: Int
    }

    public struct Bucket: Sendable, Codable {
        /// Documents with `from ..< to` tokens.
        public var from: Int
        public var to: Int
        public var documents: Int
    }

    public var documents: Int
    public var documentBytes: Int
    public var inputBytes: Int
    /// Ids of the documents (separators not counted).
    public var tokens: Int
    public var percentiles: [String: Int]
    public var meanTokens: Double
    public var histogram: [Bucket]
    /// Largest first; nil where the parts predate per-input counts.
    public var inputs: [Input]?
    public var textBytesPerToken: Double
    /// Bytes of shards on disk per token of the stream (nil without shards).
    public var shardBytesPerToken: Double?
    public var shardsKind: String?
    public var skipped: [String: IngestReport.Count]

    enum CodingKeys: String, CodingKey {
        case documents
        case documentBytes = "document_bytes"
        case inputBytes = "input_bytes"
        case tokens, percentiles
        case meanTokens = "mean_tokens"
        case histogram, inputs
        case textBytesPerToken = "text_bytes_per_token"
        case shardBytesPerToken = "shard_bytes_per_token"
        case shardsKind = "shards_kind"
        case skipped
    }

    public static func read(root: String) throws -> OutputStats {
        let layout = OutputLayout(root: root)
        guard FileManager.default.fileExists(atPath: layout.report) else {
            throw PipelineError(
                .missingInput, "\(layout.report): missing; \(root) is not a finished sluice run (see sluice status)")
        }
        let report = try StableJSON.decode(RunReport.self, from: layout.report)
        var perDocument: [Int] = []
        var inputs: [String: Input] = [:]
        var havePerInput = true
        for part in 0..<report.docsParts {
            let docs = try StableJSON.decode(DocsPart.Sidecar.self, from: layout.docsSidecar(part))
            guard FileManager.default.fileExists(atPath: layout.tokensSidecar(part)) else {
                throw PipelineError(
                    .missingInput, "\(layout.tokensSidecar(part)): missing; stats need a run with a tokenizer section")
            }
            let bytes = try LZ4FrameReader(path: layout.tokensDocumentLengths(part)).readAll()
            let counts = stride(from: 0, to: bytes.count - 3, by: 4).map {
                Int(bytes[$0]) | Int(bytes[$0 + 1]) << 8 | Int(bytes[$0 + 2]) << 16 | Int(bytes[$0 + 3]) << 24
            }
            guard counts.count == docs.documents else {
                throw PipelineError(
                    .damagedOutput,
                    "\(layout.tokensDocumentLengths(part)): \(counts.count) documents, its docs part has \(docs.documents); run sluice run again"
                )
            }
            if let perInput = docs.documentsPerInput, perInput.count == docs.inputs.count {
                var next = 0
                for (name, count) in zip(docs.inputs, perInput) {
                    var entry = inputs[name] ?? Input(file: name, documents: 0, tokens: 0)
                    entry.documents += count
                    entry.tokens += counts[next..<(next + count)].reduce(0, +)
                    inputs[name] = entry
                    next += count
                }
            } else {
                havePerInput = false
            }
            perDocument += counts
        }
        let sorted = perDocument.sorted()
        func percentile(_ p: Double) -> Int {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
        }
        var percentiles: [String: Int] = [:]
        for (name, p) in [("min", 0.0), ("p10", 10), ("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)] {
            percentiles[name] = percentile(p)
        }
        // Powers of two: documents span from a few ids to millions. Bucket k holds 2^(k-1) ..< 2^k
        // tokens (bucket 0: empty documents), found from the count's bit width in one pass.
        var counts: [Int] = []
        for tokens in perDocument {
            let bucket = Int.bitWidth - tokens.leadingZeroBitCount
            if bucket >= counts.count { counts += Array(repeating: 0, count: bucket - counts.count + 1) }
            counts[bucket] += 1
        }
        let histogram = counts.enumerated().map { bucket, documents in
            Bucket(from: bucket == 0 ? 0 : 1 << (bucket - 1), to: 1 << bucket, documents: documents)
        }
        let tokens = perDocument.reduce(0, +)
        var shardBytesPerToken: Double?
        var kind: String?
        if let data = FileManager.default.contents(atPath: layout.manifest),
            let manifest = try? JSONNode.parse([UInt8](data))
        {
            kind = manifest["shards_kind"]?.string ?? "batches"
            if let bytes = manifest["totals"]?["shard_bytes"]?.integer,
                let stream = manifest["totals"]?["tokens"]?.integer,
                stream > 0
            {
                shardBytesPerToken = Double(bytes) / Double(stream)
            }
        }
        return OutputStats(
            documents: sorted.count, documentBytes: report.ingest.documentBytes, inputBytes: report.ingest.inputBytes,
            tokens: tokens, percentiles: percentiles,
            meanTokens: sorted.isEmpty ? 0 : Double(tokens) / Double(sorted.count),
            histogram: Array(histogram.drop { $0.documents == 0 }),
            inputs: havePerInput ? inputs.values.sorted { ($0.tokens, $1.file) > ($1.tokens, $0.file) } : nil,
            textBytesPerToken: tokens == 0 ? 0 : Double(report.ingest.documentBytes) / Double(tokens),
            shardBytesPerToken: shardBytesPerToken, shardsKind: kind, skipped: report.ingest.skipped)
    }

    /// The terminal form: aligned numbers and bars.
    public func text(root: String, width: Int = 40) -> String {
        var lines = ["\(root)"]
        lines.append(
            "  documents  \(documents), \(documentBytes) bytes of text from \(inputBytes) input bytes; \(tokens) tokens"
        )
        lines.append(
            "  per token  \(String(format: "%.2f", textBytesPerToken)) bytes of text"
                + (shardBytesPerToken.map { String(format: ", %.3f bytes of %@ shards on disk", $0, shardsKind ?? "") }
                    ?? ""))
        let order = ["min", "p10", "p50", "p90", "p99", "max"]
        lines.append(
            "  tokens per document: "
                + order.map { "\($0) \(percentiles[$0] ?? 0)" }.joined(separator: ", ")
                + String(format: ", mean %.1f", meanTokens))
        let most = histogram.map(\.documents).max() ?? 0
        let labels = histogram.map { "\($0.from)–\($0.to - 1)" }
        let labelWidth = labels.map(\.count).max() ?? 0
        for (bucket, label) in zip(histogram, labels) {
            let bar = most == 0 ? 0 : Int((Double(bucket.documents) / Double(most) * Double(width)).rounded(.up))
            lines.append(
                "    " + String(repeating: " ", count: labelWidth - label.count) + label + " │"
                    + String(repeating: "█", count: bucket.documents == 0 ? 0 : max(1, bar)) + " \(bucket.documents)")
        }
        if let inputs {
            lines.append("  tokens per input file (\(inputs.count)):")
            for input in inputs.prefix(20) {
                lines.append("    \(input.tokens) tokens, \(input.documents) documents  \(input.file)")
            }
            if inputs.count > 20 { lines.append("    … \(inputs.count - 20) more (--json lists them all)") }
        } else {
            lines.append("  tokens per input file: not recorded by the run that made these parts (rerun with --force)")
        }
        if skipped.isEmpty {
            lines.append("  skipped    nothing")
        } else {
            for (reason, count) in skipped.sorted(by: { $0.key < $1.key }) {
                lines.append("  skipped    \(reason): \(count.count) (\(count.bytes) bytes)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
