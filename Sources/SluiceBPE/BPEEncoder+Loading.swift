extension BPEEncoder {
    /// Loads a tokenizer: a tiktoken rank file, or GPT-2's `encoder.json` when `merges`
    /// (its `vocab.bpe`) is given. Special tokens found in `encoder.json` are kept unless
    /// `specialTokens` gives the same name another id, which is an error.
    public static func load(vocab: String, merges: String? = nil, specialTokens: [String: TokenID] = [:])
        throws(BPEError) -> BPEEncoder
    {
        if let merges {
            let (vocabulary, fileSpecials) = try Vocabulary.load(encoderJSON: vocab, vocabBPE: merges)
            var combined = fileSpecials
            for (name, id) in specialTokens {
                if let existing = fileSpecials[name], existing != id {
                    throw BPEError(
                        .invalidSpecialToken, file: vocab,
                        "special token \"\(name)\" is id \(existing) in this file but \(id) in the config")
                }
                combined[name] = id
            }
            return try BPEEncoder(vocabulary: vocabulary, specialTokens: combined)
        }
        return try BPEEncoder(vocabulary: Vocabulary.load(tiktokenFile: vocab), specialTokens: specialTokens)
    }
}
