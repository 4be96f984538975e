import Foundation
import SluiceConfig
import SluiceIO
import SluiceVectors

/// What an output will cost on disk, before it is written (`sluice plan`): per stage, from the
/// input sizes and a tokens-per-byte estimate — or the exact token count once the tokenize
/// tasks of this output directory have run. Embeddings dominate: each token becomes
/// `output_dim` values, hundreds of times the text, and LZ4 barely shrinks them.
public struct OutputEstimate: Sendable {
    public struct Line: Sendable {
        public var stage: Stage
        public var files: String
        public var bytes: Int
        public var note: String
    }

    /// GPT-2 ids per byte of English text (the-verdict: 0.251; a 169 MB mix of books, code and
    /// web text: 0.351). Other languages and tokenizers differ; the exact count replaces it.
    public static let tokensPerByte = 0.30
    /// The book's word tokenizer on the-verdict: 4,690 tokens from 20,479 bytes.
    public static let wordsPerByte = 0.23
    /// Sizes after LZ4 (level 0) in Sluice's own files: text 0.74 of its bytes on the bundled
    /// examples, 0.44 on the (repetitive) 103.6 MB benchmark corpus; GPT-2 ids 0.88 on the-verdict,
    /// 0.50 on the benchmark corpus; float embeddings do not shrink. The estimate takes prose.
    static let textRatio = 0.6
    static let idRatio = 0.88
    static let windowIDRatio = 0.6

    public var inputBytes: Int
    public var tokens: Int
    public var tokensExact: Bool
    /// The ratio behind an inexact `tokens`.
    public var tokensPerByte: Double
    public var lines: [Line]
    public var total: Int { lines.reduce(0) { $0 + $1.bytes } }

    public init(configuration: Configuration, plan: Plan, layout: OutputLayout) {
        inputBytes = plan.tasks.filter { $0.id.stage == .ingest }.reduce(0) { $0 + $1.weight }
        let parts = plan.tasks.filter { $0.id.stage == .tokenize }.compactMap(\.id.index)
        let sidecars = parts.compactMap {
            try? StableJSON.decode(TokenizeStage.Sidecar.self, from: layout.tokensSidecar($0))
        }
        tokensExact = !parts.isEmpty && sidecars.count == parts.count
        let words = configuration.tokenizer?.words
        let perByte = words == nil ? Self.tokensPerByte : Self.wordsPerByte
        tokensPerByte = perByte
        tokens = tokensExact ? TokenStream.length(of: sidecars) : Int(Double(inputBytes) * perByte)
        // A word vocabulary's size: its vectors file's records + the two specials, or (built
        // from the documents) about a tenth of the tokens.
        var vocabularyRows = 50257
        if let words {
            vocabularyRows =
                words.vocabFrom.flatMap {
                    try? WordVectors.peekShape(
                        configuration.resolvePath($0), format: words.vocabFormat.flatMap(VectorFormat.init(rawValue:)))
                }.map { $0.count + 2 } ?? max(2, tokens / 10)
        }
        let idBytes = vocabularyRows <= 1 << 16 ? 2 : 4
        var lines = [
            Line(
                stage: .ingest, files: "docs/", bytes: Int(Double(inputBytes) * Self.textRatio),
                note: "the text, LZ4-compressed")
        ]
        guard configuration.tokenizer != nil else {
            self.lines = lines
            return
        }
        lines.append(
            Line(
                stage: .tokenize, files: "tokens/", bytes: Int(Double(tokens * idBytes) * Self.idRatio),
                note: "\(idBytes) bytes an id, LZ4-compressed"))
        guard let window = configuration.window else {
            self.lines = lines
            return
        }
        let windows = max(0, (tokens - window.maxLength + window.stride - 1) / window.stride)
        let streamBytes = tokens * idBytes
        if configuration.shardKind == .tokens {
            lines.append(Line(stage: .window, files: "_work/", bytes: streamBytes, note: "the flat stream"))
            lines.append(
                Line(
                    stage: .materialize, files: "shards/", bytes: Int(Double(streamBytes) * Self.idRatio),
                    note: "the token stream once; windows are cut at read time"))
            self.lines = lines
            return
        }
        lines.append(
            Line(
                stage: .window, files: "_work/", bytes: streamBytes + windows * 8,
                note: "the flat stream, window starts"))
        let rows = window.dropLast ? windows / window.batchSize * window.batchSize : windows
        let rowTokens = rows * window.maxLength
        var shardBytes = Int(Double(rowTokens * 8) * Self.windowIDRatio)
        var note = "\(rows) windows × \(window.maxLength): inputs and targets (int32)"
        if let embedding = configuration.embedding {
            let valueBytes = embedding.dtype == "float32" ? 4 : 2
            shardBytes += rowTokens * embedding.outputDim * valueBytes
            note +=
                ", embeddings \(embedding.outputDim) × \(embedding.dtype) = \(embedding.outputDim * valueBytes) bytes a token"
            let rows = (embedding.vocabSize ?? vocabularyRows) + (embedding.contextLength ?? window.maxLength)
            lines.append(
                Line(
                    stage: .window, files: "tables/", bytes: rows * embedding.outputDim * 4,
                    note: "\(rows) rows × \(embedding.outputDim) float32"))
        }
        lines.append(Line(stage: .materialize, files: "shards/", bytes: shardBytes, note: note))
        self.lines = lines
    }

    public var text: String {
        let basis =
            tokensExact
            ? "\(tokens) tokens, counted by this output's tokenize tasks"
            : "\(inputBytes) input bytes × \(tokensPerByte) tokens a byte ≈ \(tokens) tokens; exact once tokenized (sluice plan --out OUT)"
        var out = ["projected output (\(basis)):"]
        for line in lines {
            out.append(
                "  \(line.stage.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0))"
                    + "\(line.files.padding(toLength: 9, withPad: " ", startingAt: 0))"
                    + "\(Self.size(line.bytes).leftPadded(10))  \(line.note)")
        }
        let multiple = inputBytes > 0 ? String(format: " (%.1f× the input)", Double(total) / Double(inputBytes)) : ""
        out.append("  total" + String(repeating: " ", count: 16) + Self.size(total).leftPadded(10) + multiple)
        return out.joined(separator: "\n")
    }

    static func size(_ bytes: Int) -> String {
        let value = Double(bytes)
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] where bytes >= 1 << shift {
            return String(format: "%.1f %@", value / Double(1 << shift), unit)
        }
        return "\(bytes) B"
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
