import SluiceBPE
import SluiceConfig
import SluiceVectors

/// Checks of the files a config names that need no corpus: run before any task (by `sluice run`,
/// `sluice plan` and `sluice config check`), so that a missing vectors file or a width that
/// does not match is one line at once, not a failed task after hours of ingest.
public enum ReferencedFiles {
    public static func check(_ configuration: Configuration) throws(PipelineError) {
        if let idRange = try tokenizerIDRange(configuration) {
            try checkTableRows(configuration, idUpperBound: idRange.count, source: idRange.source)
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

    /// The ids the run's tokenizer can produce, where the config alone decides them: a BPE
    /// vocabulary file is loaded (existence, format, special tokens), a trained one has
    /// `train.vocab_size` ids. nil for the word-level tokenizer, whose vocabulary is the
    /// documents' or the distinct keys of a vectors file (its header is checked here).
    static func tokenizerIDRange(_ configuration: Configuration) throws(PipelineError) -> (
        count: Int, source: String
    )? {
        guard let tokenizer = configuration.tokenizer else { return nil }
        if let words = tokenizer.words {
            if let vocabFrom = words.vocabFrom {
                let path = configuration.resolvePath(vocabFrom)
                do {
                    _ = try WordVectors.peekShape(path, format: words.vocabFormat.flatMap(VectorFormat.init(rawValue:)))
                } catch {
                    throw PipelineError(
                        .config, "tokenizer.words.vocab_from: \(error) (in \(configuration.file))", path: path)
                }
            }
            return nil
        }
        if let train = tokenizer.train { return (train.vocabSize, "tokenizer.train.vocab_size") }
        let vocab = configuration.resolvePath(tokenizer.vocab)
        let merges = tokenizer.merges.map(configuration.resolvePath)
        do {
            let encoder = try BPEEncoder.load(vocab: vocab, merges: merges, specialTokens: tokenizer.specialTokens)
            return (encoder.idUpperBound, "the tokenizer (\(vocab))")
        } catch {
            let key = merges != nil && error.file == merges ? "tokenizer.merges" : "tokenizer.vocab"
            throw PipelineError(
                .config, "\(key): \(error) (in \(configuration.file))", path: error.file ?? vocab, underlying: error)
        }
    }

    /// `embedding.vocab_size`, when set, must give every id a row: checked before the run
    /// where the config decides the ids, and by the window task once a word vocabulary is built.
    static func checkTableRows(_ configuration: Configuration, idUpperBound: Int, source: String)
        throws(PipelineError)
    {
        guard let rows = configuration.embedding?.vocabSize, rows < idUpperBound else { return }
        throw PipelineError(
            .config,
            "embedding.vocab_size is \(rows), but \(source) gives ids up to \(idUpperBound - 1); set vocab_size to at least \(idUpperBound), or null for the tokenizer's (in \(configuration.file))"
        )
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
