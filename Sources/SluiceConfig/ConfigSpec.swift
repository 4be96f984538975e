import SluiceIO

/// The shape of a config value: what the decoder accepts and what the JSON Schema says.
public indirect enum ConfigType: Sendable {
    case string
    case integer(minimum: Int64?, maximum: Int64?)
    /// A torch seed: an integer from −2^63 to 2^64 − 1 (`Seed`).
    case seed
    /// A number from 0 to 1 (a fraction), integer or not.
    case fraction
    case boolean
    case enumeration([String])
    case array(ConfigType, minItems: Int)
    case object([ConfigField])
    /// An object whose keys are free-form (special token → id).
    case stringMap(ConfigType)
    case nullable(ConfigType)
    /// Any of several types (e.g. `shuffle`: a boolean or "torch").
    case anyOf([ConfigType])
}

/// One key of a config object: its type, its default and what it is for.
public struct ConfigField: Sendable {
    public let name: String
    public let type: ConfigType
    /// nil: the key is required.
    public let defaultValue: JSONNode.Value?
    public let summary: String

    public init(_ name: String, _ type: ConfigType, default defaultValue: JSONNode.Value?, _ summary: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.summary = summary
    }
}

/// Config format 1 (DESIGN.md, docs/CONFIG.md). The single place where keys, types, ranges
/// and defaults are defined: the decoder, `sluice config schema` and the docs all read it.
public enum ConfigSpec {
    public static let formatVersion: Int64 = 1
    static let maxInt = Int64(1) << 50

    public static let ingest: [ConfigField] = [
        ConfigField(
            "text_field", .string, default: .string(Array("text".utf8)),
            "JSONL: the field of each record that holds the document text."),
        ConfigField(
            "invalid_utf8", .enumeration(["replace", "skip", "fail"]), default: .string(Array("replace".utf8)),
            "Invalid UTF-8: replace each bad sequence with U+FFFD as Python's errors=\"replace\" does, skip the document, or fail the run."
        ),
        ConfigField(
            "on_bad_input", .enumeration(["skip", "fail"]), default: .string(Array("skip".utf8)),
            "A corrupt archive or member, malformed JSONL line or unreadable file: report it and go on, or stop at the first."
        ),
        ConfigField(
            "on_truncated_input", .enumeration(["fail", "keep"]), default: .string(Array("fail".utf8)),
            "An input not read completely (truncated, corrupt, stopped by a limit): finish the run and exit 4, or accept it with exit 0. The manifest lists it as partial either way."
        ),
        ConfigField(
            "binary", .enumeration(["skip", "keep"]), default: .string(Array("skip".utf8)),
            "Content that is not text (executables, images, Parquet, SQLite, PDF, NUL- or control-heavy first 64 KiB): skip and count it, or keep it as text."
        ),
        ConfigField(
            "hidden_files", .enumeration(["skip", "read"]), default: .string(Array("skip".utf8)),
            "Names with a component starting with \".\" found in folders, globs and archives: skip and count them, or read them. Inputs named in \"inputs\" are always read."
        ),
        ConfigField(
            "max_document_bytes", .integer(minimum: 1, maximum: maxInt), default: .integer(17_179_869_184),
            "A document larger than this is skipped and reported. Documents over 8 MiB stream in bounded memory."),
        ConfigField(
            "max_record_bytes", .integer(minimum: 1, maximum: maxInt), default: .integer(268_435_456),
            "JSONL: a record line longer than this is skipped as it streams past (records are parsed in memory)."),
        ConfigField(
            "max_input_bytes", .integer(minimum: 1, maximum: maxInt), default: .integer(17_179_869_184),
            "Most decompressed bytes read from one input file; stops decompression bombs."),
        ConfigField(
            "max_compression_ratio", .integer(minimum: 1, maximum: maxInt), default: .integer(1000),
            "Most decompressed bytes per compressed byte of one input, checked once it has given 64 MiB; stops zero bombs early."
        ),
        ConfigField(
            "utf16", .enumeration(["decode", "reject"]), default: .string(Array("decode".utf8)),
            "A document that starts with a UTF-16 byte order mark: decode it to UTF-8, or reject it as bad input."),
        ConfigField(
            "newlines", .enumeration(["keep", "lf"]), default: .string(Array("keep".utf8)),
            "Line endings: keep them byte for byte, or turn CRLF and lone CR into LF."),
        ConfigField(
            "nul_bytes", .enumeration(["keep", "strip"]), default: .string(Array("keep".utf8)),
            "NUL bytes in text: keep them, or remove them."),
        ConfigField(
            "nested_archives", .enumeration(["read", "skip"]), default: .string(Array("read".utf8)),
            "An archive or compressed file inside an archive: read its members (one level deep), or skip it and count it."
        ),
        ConfigField(
            "part_bytes", .integer(minimum: 1, maximum: maxInt), default: .integer(16_777_216),
            "Inputs are grouped into ingest tasks of about this many input bytes; each writes one docs part."),
    ]

    public static let train: [ConfigField] = [
        ConfigField(
            "vocab_size", .integer(minimum: 257, maximum: 1 << 31), default: nil,
            "Tokens to learn, the 256 bytes and the special tokens included (HF BpeTrainer's vocab_size)."),
        ConfigField(
            "min_frequency", .integer(minimum: 0, maximum: maxInt), default: .integer(0),
            "Pairs seen fewer times are never merged."),
    ]

    /// A word-vectors file's format, or null for detection (SluiceVectors' `VectorFormat` names).
    static let vectorFormat = ConfigType.nullable(
        .enumeration(["word2vec-binary", "word2vec-text", "glove", "safetensors"]))

    public static let words: [ConfigField] = [
        ConfigField(
            "vocab_from", .nullable(.string), default: .null,
            "null: the book's vocabulary of this run's documents (their sorted distinct pieces, then <|endoftext|>, <|unk|>); or a word-vectors file whose keys, in file order, are the vocabulary (the two specials appended when missing). Relative to the config file."
        ),
        ConfigField(
            "vocab_format", vectorFormat, default: .null, "Format of vocab_from; null: detected from its content."),
        ConfigField(
            "lowercase", .boolean, default: .bool(false),
            "Look pieces up lower-cased (Python's str.lower()), for lower-case vocabularies such as GloVe's."),
    ]

    public static let tokenizer: [ConfigField] = [
        ConfigField(
            "vocab", .nullable(.string), default: .null,
            "A tiktoken rank file, or GPT-2's encoder.json when `merges` is given. Relative to the config file. Exactly one of vocab and train."
        ),
        ConfigField(
            "merges", .nullable(.string), default: .null,
            "GPT-2's vocab.bpe, to load `vocab` as encoder.json + vocab.bpe."),
        ConfigField(
            "special_tokens", .stringMap(.integer(minimum: 0, maximum: Int64(UInt32.max) - 1)),
            default: .object([("<|endoftext|>", JSONNode(.integer(50256)))]),
            "Special tokens and their ids; they never come from document text."),
        ConfigField(
            "document_separator", .nullable(.string), default: .string(Array("<|endoftext|>".utf8)),
            "The special token put between documents, or null for none."),
        ConfigField(
            "train", .nullable(.object(train)), default: .null,
            "Learn the vocabulary from this run's documents (byte-level BPE, HF tokenizers' merges) instead of loading one."
        ),
        ConfigField(
            "words", .nullable(.object(words)), default: .null,
            "The book's word-level tokenizer (SimpleTokenizerV2) instead of BPE: split on punctuation, -- and whitespace, unknown pieces become <|unk|>. Its special tokens are its vocabulary's own (leave special_tokens out)."
        ),
    ]

    public static let window: [ConfigField] = [
        ConfigField(
            "max_length", .integer(minimum: 1, maximum: 1 << 30), default: .integer(256),
            "Tokens per training window (GPTDatasetV1's max_length)."),
        ConfigField(
            "stride", .integer(minimum: 1, maximum: 1 << 30), default: .integer(128),
            "Tokens between the starts of consecutive windows."),
        ConfigField(
            "batch_size", .integer(minimum: 1, maximum: 1 << 24), default: .integer(4),
            "Windows per batch."),
        ConfigField(
            "shuffle", .anyOf([.boolean, .enumeration(["torch"])]), default: .bool(false),
            "false: windows in order; true: a seeded shuffle; \"torch\": exactly DataLoader(shuffle=True)'s order."),
        ConfigField(
            "seed", .seed, default: .integer(123),
            "Seed of the shuffle."),
        ConfigField(
            "drop_last", .boolean, default: .bool(true),
            "Drop a final batch that has fewer than batch_size windows."),
        ConfigField(
            "cross_document", .boolean, default: .bool(true),
            "Let windows cross document boundaries (the book's behaviour); false keeps each window inside one document."
        ),
    ]

    public static let embedding: [ConfigField] = [
        ConfigField(
            "output_dim", .integer(minimum: 1, maximum: 1 << 20), default: .integer(256),
            "Embedding width D."),
        ConfigField(
            "vocab_size", .nullable(.integer(minimum: 1, maximum: 1 << 31)), default: .null,
            "Rows of the token table; null: the tokenizer's (50257 for GPT-2)."),
        ConfigField(
            "context_length", .nullable(.integer(minimum: 1, maximum: 1 << 30)), default: .null,
            "Rows of the position table; null: window.max_length."),
        ConfigField(
            "init", .enumeration(["torch", "pretrained"]), default: .string(Array("torch".utf8)),
            "torch: bit-exact torch.manual_seed(seed) + nn.Embedding; pretrained: tables from a safetensors file (pretrained), or the token table from word vectors (vectors)."
        ),
        ConfigField(
            "seed", .seed, default: .integer(123),
            "torch.manual_seed value for init \"torch\"."),
        ConfigField(
            "torch_kernel", .enumeration(["avx2", "default"]), default: .string(Array("avx2".utf8)),
            "PyTorch CPU kernel to reproduce: avx2 (every modern x86-64) or default (the scalar libm one)."),
        ConfigField(
            "dtype", .enumeration(["float32", "float16", "bfloat16"]), default: .string(Array("float32".utf8)),
            "Element type of the materialized embeddings."),
        ConfigField(
            "pretrained", .nullable(.string), default: .null,
            "init \"pretrained\": the safetensors file holding the tables."),
        ConfigField(
            "vectors", .nullable(.string), default: .null,
            "init \"pretrained\" with a word-level tokenizer: a word2vec/GloVe/fastText/safetensors vectors file. Row i of the token table is the vector of word i (looked up lower-cased with words.lowercase); the position table and the rows of words without a vector are the torch tables of seed."
        ),
        ConfigField(
            "vectors_format", vectorFormat, default: .null, "Format of vectors; null: detected from its content."),
        ConfigField(
            "missing_vectors", .enumeration(["torch", "zeros"]), default: .string(Array("torch".utf8)),
            "Rows of tokens without a vector (<|unk|>, <|endoftext|>, words the file lacks): the seeded torch row (as if nn.Embedding were created, then the known rows copied in), or zeros."
        ),
        ConfigField(
            "token_tensor", .string, default: .string(Array("token_embedding".utf8)),
            "init \"pretrained\": name of the token table in that file (float32 [≥ vocab_size, output_dim])."),
        ConfigField(
            "position_tensor", .string, default: .string(Array("position_embedding".utf8)),
            "init \"pretrained\": name of the position table in that file (float32 [≥ context_length, output_dim])."),
    ]

    public static let shards: [ConfigField] = [
        ConfigField(
            "kind", .enumeration(["batches", "tokens"]), default: .string(Array("batches".utf8)),
            "batches: whole batches of inputs, targets and embeddings, in the window section's order; tokens: the token stream once (2 bytes a GPT-2 id, LZ4 blocks) with a document index, windows of any length cut at read time (python/sluice_reader)."
        ),
        ConfigField(
            "target_bytes", .integer(minimum: 1, maximum: maxInt), default: .integer(134_217_728),
            "Approximate uncompressed size of one output shard (whole batches, or ids, per shard). One materialize task per shard: smaller shards spread the work more evenly over workers."
        ),
    ]

    public static let split: [ConfigField] = [
        ConfigField(
            "validation_fraction", .fraction, default: .integer(0),
            "Fraction of the documents sent to the validation split, chosen by each document's content (its ids) and the seed: the same documents whatever the workers or the input order."
        ),
        ConfigField(
            "validation_documents", .integer(minimum: 0, maximum: maxInt), default: .integer(0),
            "Or a number of documents: those whose content hashes lowest with the seed."),
        ConfigField(
            "seed", .seed, default: .integer(0),
            "Seed of the choice: another seed, another validation set."),
    ]

    /// Keys that say how a run is executed, never what it makes: they enter no task's identity
    /// and not the manifest's config, so outputs made with any worker count, retry limit,
    /// executor or output path are byte-identical.
    public static let executionOnlyKeys: Set<String> = ["output", "workers", "retries", "executor"]

    public static let slurm: [ConfigField] = [
        ConfigField(
            "partition", .nullable(.string), default: .null,
            "sbatch --partition; null: the cluster's default partition."),
        ConfigField("account", .nullable(.string), default: .null, "sbatch --account; null: your default account."),
        ConfigField("qos", .nullable(.string), default: .null, "sbatch --qos; null: the default QOS."),
        ConfigField(
            "time_limit", .nullable(.string), default: .null,
            "sbatch --time for each task (\"30:00\", \"2-00:00:00\"); null: the partition's default. A task that hits it is retried."
        ),
        ConfigField(
            "cpus_per_task", .integer(minimum: 1, maximum: 1024), default: .integer(1),
            "sbatch --cpus-per-task. A task is one process; more CPUs only help the tokenizer stage's training."),
        ConfigField(
            "mem_per_task", .nullable(.string), default: .null,
            "sbatch --mem for each task (\"4G\"); null: the partition's default. A task killed for memory is retried."
        ),
        ConfigField(
            "max_array_size", .nullable(.integer(minimum: 1, maximum: 4_000_000)), default: .null,
            "Most tasks in one job array; null: the cluster's MaxArraySize (scontrol show config). Larger stages are split."
        ),
        ConfigField(
            "sbatch_args", .array(.string, minItems: 0), default: .array([]),
            "Further sbatch arguments for every job, e.g. [\"--constraint=ssd\", \"--exclude=node7\"]."),
        ConfigField(
            "job_name", .string, default: .string(Array("sluice".utf8)),
            "Prefix of the jobs' names: <job_name>-<stage>, as squeue shows them."),
        ConfigField(
            "poll_ms", .integer(minimum: 100, maximum: 600_000), default: .integer(1000),
            "How often the coordinator asks squeue about its jobs."),
    ]

    public static let executor: [ConfigField] = [
        ConfigField(
            "kind", .enumeration(["local", "slurm"]), default: .string(Array("local".utf8)),
            "local: worker processes on this machine; slurm: one job array per stage on a Slurm cluster (sluice run --executor overrides)."
        ),
        ConfigField("slurm", .object(slurm), default: .object([]), "Settings of the Slurm executor."),
    ]

    public static let root: [ConfigField] = [
        ConfigField(
            "format", .integer(minimum: 1, maximum: 1), default: .integer(formatVersion),
            "Config format version."),
        ConfigField(
            "extends", .array(.string, minItems: 0), default: .array([]),
            "Preset files merged under this config, in order, section by section (relative to this file; see configs/). The merged result is what counts: config check prints it."
        ),
        ConfigField(
            "inputs", .array(.string, minItems: 1), default: nil,
            "Files, directories (recursive) and glob patterns, relative to the config file."),
        ConfigField(
            "output", .string, default: .string(Array("out".utf8)),
            "Output directory, relative to the config file (sluice run --out overrides)."),
        ConfigField(
            "workers", .nullable(.integer(minimum: 1, maximum: 1024)), default: .null,
            "Worker processes at once; null: the number of CPUs. Never changes the output."),
        ConfigField(
            "retries", .integer(minimum: 0, maximum: 100), default: .integer(2),
            "Times a failed task is retried before the run stops."),
        ConfigField(
            "executor", .object(executor), default: .object([]),
            "Where the tasks run: worker processes here, or jobs on a Slurm cluster. Never changes the output."),
        ConfigField("ingest", .object(ingest), default: .object([]), "Reading inputs into documents."),
        ConfigField(
            "tokenizer", .nullable(.object(tokenizer)), default: .null,
            "Byte-level BPE tokenization (or the book's word-level tokenizer with words); null: the run stops after ingest."
        ),
        ConfigField(
            "window", .nullable(.object(window)), default: .null,
            "Sliding windows and batches; null: the run stops after tokenize."),
        ConfigField(
            "embedding", .nullable(.object(embedding)), default: .null,
            "Token + position embeddings; null: shards hold ids only."),
        ConfigField("shards", .object(shards), default: .object([]), "Output shards."),
        ConfigField(
            "split", .object(split), default: .object([]),
            "Send some documents to a validation split with its own shards (OUT/validation/) and manifest section."),
    ]
}
