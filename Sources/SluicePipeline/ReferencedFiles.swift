import SluiceConfig
import SluiceVectors

/// Checks of the files a config names that need no corpus: run before any task (by `sluice run`,
/// `sluice plan` and `sluice config check`), so that a missing vectors file or a width that
/// does not match is one line at once, not a failed task after hours of ingest.
public enum ReferencedFiles {
    public static func check(_ configuration: Configuration) throws(PipelineError) {
        if let vocabFrom = configuration.tokenizer?.words?.vocabFrom {
            let path = configuration.resolvePath(vocabFrom)
            do {
                _ = try WordVectors.peekShape(
                    path, format: configuration.tokenizer?.words?.vocabFormat.flatMap(VectorFormat.init(rawValue:)))
            } catch {
                throw PipelineError(
                    .config, "tokenizer.words.vocab_from: \(error) (in \(configuration.file))", path: path)
            }
        }
        if let embedding = configuration.embedding, let vectors = embedding.vectors {
            let path = configuration.resolvePath(vectors)
            let shape: (count: Int, dim: Int, format: VectorFormat)
            do {
                shape = try WordVectors.peekShape(
                    path, format: embedding.vectorsFormat.flatMap(VectorFormat.init(rawValue:)))
            } catch {
                throw PipelineError(.config, "embedding.vectors: \(error) (in \(configuration.file))", path: path)
            }
            try checkWidth(shape.dim, outputDim: embedding.outputDim, path: path)
        }
    }

    /// The vectors' width must be `embedding.output_dim`.
    static func checkWidth(_ dim: Int, outputDim: Int, path: String) throws(PipelineError) {
        guard dim == outputDim else {
            throw PipelineError(
                .config,
                "embedding.vectors: \(path) has \(dim)-dimensional vectors, but embedding.output_dim is \(outputDim); set output_dim to \(dim)",
                path: path)
        }
    }
}
