import Foundation
import SluiceIO

/// How invalid UTF-8 in a document is handled.
public enum InvalidUTF8Policy: String, Sendable { case replace, skip, fail }
/// What a bad input (corrupt archive, malformed JSONL line, unreadable file) does to the run.
public enum BadInputPolicy: String, Sendable { case skip, fail }
/// What an input that was not read completely (truncated, corrupt, stopped by a limit) does
/// to the run's exit status; the output marks it as partial either way.
public enum TruncatedInputPolicy: String, Sendable { case fail, keep }

/// The `ingest` section.
public struct IngestSettings: Sendable, Equatable {
    public var textField = "text"
    public var invalidUTF8 = InvalidUTF8Policy.replace
    public var onBadInput = BadInputPolicy.skip
    /// Documents over `streamThresholdBytes` stream through ingest and tokenize in bounded
    /// memory, so this limit is about disk and time, not memory.
    public var maxDocumentBytes = 17_179_869_184
    /// JSONL records are parsed whole, in memory: a record line is at most this long.
    public var maxRecordBytes = 268_435_456
    public var maxInputBytes = 17_179_869_184
    /// Decompressed bytes per compressed byte of one input, checked once it has produced
    /// 64 MiB: stops zero bombs in milliseconds.
    public var maxCompressionRatio = 1000
    public var onTruncatedInput = TruncatedInputPolicy.fail
    public var skipBinary = true
    public var skipHiddenFiles = true
    public var decodeUTF16 = true
    public var normalizeNewlines = false
    public var stripNulBytes = false
    public var readNestedArchives = true
    public var partBytes = 16_777_216

    public init() {}
}

/// The `tokenizer` section, paths already resolved against the config's directory.
public struct TokenizerSettings: Sendable, Equatable {
    /// Empty when the vocabulary is trained.
    public var vocab: String
    public var merges: String?
    public var specialTokens: [String: UInt32]
    public var documentSeparator: String?
    public var train: TrainSettings?
    /// `tokenizer.words`: the book's word-level tokenizer instead of BPE.
    public var words: WordSettings?

    /// `tokenizer.words`.
    public struct WordSettings: Sendable, Equatable {
        /// A vectors file whose keys are the vocabulary; nil: built from the documents.
        public var vocabFrom: String?
        public var vocabFormat: String?
        public var lowercase: Bool
    }

    /// `tokenizer.train`: learn the vocabulary from the run's documents.
    public struct TrainSettings: Sendable, Equatable {
        public var vocabSize: Int
        public var minFrequency: Int

        /// Special token names in id order (what the trainer numbers after the ranks).
        public func specialTokenOrder(_ specialTokens: [String: UInt32]) -> [String] {
            specialTokens.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }.map(\.key)
        }
    }
}

/// The `window` section.
public struct WindowSettings: Sendable, Equatable {
    public enum Shuffle: Sendable, Equatable { case none, seeded, torch }
    public var maxLength: Int
    public var stride: Int
    public var batchSize: Int
    public var shuffle: Shuffle
    public var seed: UInt64
    public var dropLast: Bool
    public var crossDocument: Bool

    public init(
        maxLength: Int, stride: Int, batchSize: Int, shuffle: Shuffle, seed: UInt64, dropLast: Bool, crossDocument: Bool
    ) {
        self.maxLength = maxLength
        self.stride = stride
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.crossDocument = crossDocument
    }
}

/// The `embedding` section.
public struct EmbeddingSettings: Sendable, Equatable {
    public var outputDim: Int
    public var vocabSize: Int?
    public var contextLength: Int?
    public var initializer: String
    public var seed: UInt64
    public var torchKernel: String
    public var dtype: String
    public var pretrained: String?
    /// Word vectors for the token table (init "pretrained" with a word-level tokenizer).
    public var vectors: String?
    public var vectorsFormat: String?
    /// "torch" or "zeros": rows of tokens without a vector.
    public var missingVectors: String
    public var tokenTensor: String
    public var positionTensor: String
}

/// Where a run's tasks execute (`executor` in the config); never part of what the output is.
public struct ExecutorSettings: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case local, slurm
    }

    /// `executor.slurm`: how each task's job is submitted (docs/SLURM.md).
    public struct Slurm: Sendable, Equatable {
        public var partition: String?
        public var account: String?
        public var qos: String?
        public var timeLimit: String?
        public var cpusPerTask = 1
        public var memoryPerTask: String?
        /// nil: the cluster's `MaxArraySize`.
        public var maxArraySize: Int?
        public var sbatchArguments: [String] = []
        public var jobName = "sluice"
        public var pollMilliseconds = 1000
        public init() {}
    }

    public var kind = Kind.local
    public var slurm = Slurm()
    public init() {}
}

/// The `split` section: which documents go to the validation split.
public struct SplitSettings: Sendable, Equatable {
    public var validationFraction = 0.0
    public var validationDocuments = 0
    public var seed: UInt64 = 0
    /// Whether any document can go to validation.
    public var isEnabled: Bool { validationFraction > 0 || validationDocuments > 0 }
    public init() {}
}

/// What the output shards hold (`shards.kind`).
public enum ShardKind: String, Sendable, CaseIterable {
    /// Whole batches: inputs, targets and embeddings, in the window section's sample order.
    case batches
    /// The token stream once, in LZ4 blocks, plus a document index; windows are cut at read time.
    case tokens
}

/// A decoded, validated config (format 1) with every default filled in.
public struct Configuration: Sendable {
    /// The config file, as given.
    public var file: String
    /// The bytes it was decoded from (what a run records for its workers).
    public var text: [UInt8]
    /// Relative paths in the config resolve against this directory.
    public var baseDirectory: String
    public var inputs: [String]
    public var output: String
    public var workers: Int?
    public var retries: Int
    public var executor: ExecutorSettings
    public var ingest: IngestSettings
    public var tokenizer: TokenizerSettings?
    public var window: WindowSettings?
    public var embedding: EmbeddingSettings?
    public var shardTargetBytes: Int
    public var shardKind: ShardKind
    public var split: SplitSettings
    /// The config with every default filled in, in spec order; stored in the manifest.
    public var resolved: JSONNode
    /// SHA-256 of `resolved.serialized()`.
    public var resolvedSHA256: String
    /// `resolved` without the execution-only keys (`ConfigSpec.executionOnlyKeys`): what the
    /// output depends on, and what the manifest records.
    public var outputDefining: JSONNode {
        JSONNode(.object((resolved.members ?? []).filter { !ConfigSpec.executionOnlyKeys.contains($0.key) }))
    }
    /// SHA-256 of `outputDefining.serialized()`: the manifest's and the report's `config_sha256`.
    public var outputDefiningSHA256: String

    /// Reads and validates a config file.
    /// - Throws: `ConfigError` listing every problem with its JSON path, line and column.
    public static func load(file: String) throws(ConfigError) -> Configuration {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(file)
        } catch {
            throw ConfigError(
                file: file, issues: [ConfigIssue(path: "", message: "cannot read the config file: \(error.message)")])
        }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return try decode(bytes, file: file, baseDirectory: base)
    }

    /// Validates config text; `file` names it in errors, `baseDirectory` anchors relative paths.
    public static func decode(_ bytes: [UInt8], file: String, baseDirectory: String) throws(ConfigError)
        -> Configuration
    {
        var node: JSONNode
        do {
            node = try JSONNode.parse(bytes)
        } catch {
            throw ConfigError(
                file: file,
                issues: [
                    ConfigIssue(
                        path: "", line: error.line, column: error.column, message: "invalid JSON: \(error.message)")
                ])
        }
        var text = bytes
        var presets = ConfigPresets(rootDirectory: baseDirectory)
        if node["extends"] != nil {
            node = presets.merge(node, file: file)
            guard presets.issues.isEmpty else { throw ConfigError(file: file, issues: presets.issues) }
            // Workers load the merged config: the presets are read once, by the coordinator.
            text = Array(node.serialized().utf8) + [0x0A]
        }
        var decoder = ConfigDecoder()
        var resolved = decoder.resolve(node, as: .object(ConfigSpec.root), path: "")
        guard decoder.issues.isEmpty else {
            throw ConfigError(file: file, issues: decoder.issues.map { presets.located($0, config: file) })
        }
        resolved = JSONNode(.object((resolved.members ?? []).filter { $0.key != "extends" }))
        var configuration = Configuration(resolved: resolved, file: file, baseDirectory: baseDirectory)
        configuration.text = text
        let crossIssues = configuration.crossFieldIssues(original: node)
        guard crossIssues.isEmpty else {
            throw ConfigError(file: file, issues: crossIssues.map { presets.located($0, config: file) })
        }
        configuration.resolvedSHA256 = SHA256Hasher.hex(Array(resolved.serialized().utf8))
        configuration.outputDefiningSHA256 = SHA256Hasher.hex(Array(configuration.outputDefining.serialized().utf8))
        return configuration
    }

    /// Resolves `path` against the config's directory (absolute paths stay as they are).
    public func resolvePath(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).standardized.path
    }

    // MARK: - From the validated tree

    private init(resolved node: JSONNode, file: String, baseDirectory: String) {
        self.file = file
        self.text = []
        self.baseDirectory = baseDirectory
        self.resolved = node
        self.resolvedSHA256 = ""
        self.outputDefiningSHA256 = ""
        inputs = node["inputs"].flatMap(Self.strings) ?? []
        output = node["output"]?.string ?? "out"
        workers = node["workers"].flatMap(Self.int)
        retries = node["retries"].flatMap(Self.int) ?? 2
        var executor = ExecutorSettings()
        if let section = node["executor"] {
            executor.kind = section["kind"]?.string.flatMap(ExecutorSettings.Kind.init) ?? .local
            if let slurm = section["slurm"] {
                executor.slurm.partition = slurm["partition"]?.string
                executor.slurm.account = slurm["account"]?.string
                executor.slurm.qos = slurm["qos"]?.string
                executor.slurm.timeLimit = slurm["time_limit"]?.string
                executor.slurm.cpusPerTask = slurm["cpus_per_task"].flatMap(Self.int) ?? 1
                executor.slurm.memoryPerTask = slurm["mem_per_task"]?.string
                executor.slurm.maxArraySize = slurm["max_array_size"].flatMap(Self.int)
                executor.slurm.sbatchArguments = slurm["sbatch_args"].flatMap(Self.strings) ?? []
                executor.slurm.jobName = slurm["job_name"]?.string ?? "sluice"
                executor.slurm.pollMilliseconds = slurm["poll_ms"].flatMap(Self.int) ?? 1000
            }
        }
        self.executor = executor
        shardTargetBytes = node["shards"]?["target_bytes"].flatMap(Self.int) ?? 134_217_728
        shardKind = node["shards"]?["kind"]?.string.flatMap(ShardKind.init) ?? .batches
        var split = SplitSettings()
        if let section = node["split"] {
            switch section["validation_fraction"]?.value {
            case .integer(let value)?: split.validationFraction = Double(value)
            case .number(let value)?: split.validationFraction = value
            default: break
            }
            split.validationDocuments = section["validation_documents"].flatMap(Self.int) ?? 0
            split.seed = section["seed"].flatMap(Seed.init)?.bits ?? 0
        }
        self.split = split

        var ingest = IngestSettings()
        if let section = node["ingest"] {
            ingest.textField = section["text_field"]?.string ?? ingest.textField
            ingest.invalidUTF8 = section["invalid_utf8"]?.string.flatMap(InvalidUTF8Policy.init) ?? ingest.invalidUTF8
            ingest.onBadInput = section["on_bad_input"]?.string.flatMap(BadInputPolicy.init) ?? ingest.onBadInput
            ingest.maxDocumentBytes = section["max_document_bytes"].flatMap(Self.int) ?? ingest.maxDocumentBytes
            ingest.maxInputBytes = section["max_input_bytes"].flatMap(Self.int) ?? ingest.maxInputBytes
            ingest.maxRecordBytes = section["max_record_bytes"].flatMap(Self.int) ?? ingest.maxRecordBytes
            ingest.maxCompressionRatio =
                section["max_compression_ratio"].flatMap(Self.int) ?? ingest.maxCompressionRatio
            ingest.onTruncatedInput =
                section["on_truncated_input"]?.string.flatMap(TruncatedInputPolicy.init) ?? ingest.onTruncatedInput
            ingest.skipBinary = section["binary"]?.string != "keep"
            ingest.skipHiddenFiles = section["hidden_files"]?.string != "read"
            ingest.decodeUTF16 = section["utf16"]?.string != "reject"
            ingest.normalizeNewlines = section["newlines"]?.string == "lf"
            ingest.stripNulBytes = section["nul_bytes"]?.string == "strip"
            ingest.readNestedArchives = section["nested_archives"]?.string != "skip"
            ingest.partBytes = section["part_bytes"].flatMap(Self.int) ?? ingest.partBytes
        }
        self.ingest = ingest

        if let section = node["tokenizer"], section.members != nil {
            var special: [String: UInt32] = [:]
            for member in section["special_tokens"]?.members ?? [] {
                if let id = Self.int(member.value) { special[member.key] = UInt32(id) }
            }
            var train: TokenizerSettings.TrainSettings?
            if let trainSection = section["train"], trainSection.members != nil {
                train = TokenizerSettings.TrainSettings(
                    vocabSize: trainSection["vocab_size"].flatMap(Self.int) ?? 0,
                    minFrequency: trainSection["min_frequency"].flatMap(Self.int) ?? 0)
            }
            var words: TokenizerSettings.WordSettings?
            if let wordsSection = section["words"], wordsSection.members != nil {
                words = TokenizerSettings.WordSettings(
                    vocabFrom: wordsSection["vocab_from"]?.string, vocabFormat: wordsSection["vocab_format"]?.string,
                    lowercase: wordsSection["lowercase"]?.bool ?? false)
            }
            tokenizer = TokenizerSettings(
                vocab: section["vocab"]?.string ?? "",
                merges: section["merges"]?.string,
                specialTokens: special,
                documentSeparator: section["document_separator"]?.string,
                train: train,
                words: words)
        }
        if let section = node["window"], section.members != nil {
            let shuffle: WindowSettings.Shuffle
            switch section["shuffle"]?.value {
            case .bool(true)?: shuffle = .seeded
            case .string?: shuffle = .torch
            default: shuffle = .none
            }
            window = WindowSettings(
                maxLength: section["max_length"].flatMap(Self.int) ?? 256,
                stride: section["stride"].flatMap(Self.int) ?? 128,
                batchSize: section["batch_size"].flatMap(Self.int) ?? 4,
                shuffle: shuffle,
                seed: section["seed"].flatMap(Seed.init)?.bits ?? 123,
                dropLast: section["drop_last"]?.value != .bool(false),
                crossDocument: section["cross_document"]?.value != .bool(false))
        }
        if let section = node["embedding"], section.members != nil {
            embedding = EmbeddingSettings(
                outputDim: section["output_dim"].flatMap(Self.int) ?? 256,
                vocabSize: section["vocab_size"].flatMap(Self.int),
                contextLength: section["context_length"].flatMap(Self.int),
                initializer: section["init"]?.string ?? "torch",
                seed: section["seed"].flatMap(Seed.init)?.bits ?? 123,
                torchKernel: section["torch_kernel"]?.string ?? "avx2",
                dtype: section["dtype"]?.string ?? "float32",
                pretrained: section["pretrained"]?.string,
                vectors: section["vectors"]?.string,
                vectorsFormat: section["vectors_format"]?.string,
                missingVectors: section["missing_vectors"]?.string ?? "torch",
                tokenTensor: section["token_tensor"]?.string ?? "token_embedding",
                positionTensor: section["position_tensor"]?.string ?? "position_embedding")
        }
    }

    private static func int(_ node: JSONNode) -> Int? {
        if case .integer(let value) = node.value { return Int(value) }
        return nil
    }

    private static func strings(_ node: JSONNode) -> [String]? {
        if case .array(let items) = node.value { return items.compactMap(\.string) }
        return nil
    }

    /// Rules that span several keys, which JSON Schema cannot state (docs/CONFIG.md lists them).
    private func crossFieldIssues(original: JSONNode) -> [ConfigIssue] {
        var issues: [ConfigIssue] = []
        func issue(_ path: String, _ message: String) {
            let parts = path.split(separator: ".").map(String.init)
            var node: JSONNode? = original
            for part in parts { node = node?[part] ?? node }
            issues.append(ConfigIssue(path: path, line: node?.line, column: node?.column, message: message))
        }
        if let tokenizer, tokenizer.words != nil {
            if !tokenizer.vocab.isEmpty || tokenizer.train != nil || tokenizer.merges != nil {
                issue(
                    "tokenizer.words",
                    "the word-level tokenizer has its own vocabulary: leave out vocab, merges and train (or use words.vocab_from)"
                )
            }
            if original["tokenizer"]?["special_tokens"] != nil {
                issue(
                    "tokenizer.special_tokens",
                    "with \"words\", the special tokens are the vocabulary's own <|endoftext|> and <|unk|> (after its pieces); remove special_tokens"
                )
            }
            if let separator = tokenizer.documentSeparator, separator != "<|endoftext|>", separator != "<|unk|>" {
                issue(
                    "tokenizer.document_separator",
                    "with \"words\", the separator is \"<|endoftext|>\" (or \"<|unk|>\"), or null for none")
            }
        } else if let tokenizer {
            if tokenizer.vocab.isEmpty == (tokenizer.train == nil) {
                issue(
                    "tokenizer",
                    tokenizer.train == nil
                        ? "give \"vocab\" (a rank file or encoder.json) or \"train\" (learn one from the documents)"
                        : "give either \"vocab\" or \"train\", not both")
            }
            if let train = tokenizer.train {
                // Trained special tokens take the ids after the learned ranks, in id order.
                let names = train.specialTokenOrder(tokenizer.specialTokens)
                let first = train.vocabSize - names.count
                let expected = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, UInt32(first + $0)) })
                if expected != tokenizer.specialTokens {
                    let wanted = names.enumerated().map { "\"\($1)\": \(first + $0)" }.joined(separator: ", ")
                    issue(
                        "tokenizer.special_tokens",
                        "with \"train\", special tokens take the ids after the \(first) learned ranks; write {\(wanted)}"
                    )
                }
                if tokenizer.merges != nil {
                    issue("tokenizer.merges", "\"merges\" goes with \"vocab\", not \"train\"")
                }
            }
            if let separator = tokenizer.documentSeparator, tokenizer.specialTokens[separator] == nil {
                issue(
                    "tokenizer.document_separator",
                    "\"\(separator)\" is not one of tokenizer.special_tokens; add it there with its id, or set null")
            }
            var seen: [UInt32: String] = [:]
            for (name, id) in tokenizer.specialTokens.sorted(by: { $0.key < $1.key }) {
                if let other = seen[id] {
                    issue("tokenizer.special_tokens", "\"\(name)\" and \"\(other)\" share id \(id)")
                }
                seen[id] = name
                if name.isEmpty { issue("tokenizer.special_tokens", "a special token cannot be the empty string") }
            }
        }
        if window != nil && tokenizer == nil {
            issue("window", "windows need token ids: add a \"tokenizer\" section")
        }
        if split.validationFraction > 0 && split.validationDocuments > 0 {
            issue("split", "give validation_fraction or validation_documents, not both")
        }
        if split.isEnabled && window == nil {
            issue("split", "the split is made by the window stage: add a \"window\" section")
        }
        if shardKind == .tokens {
            if window == nil {
                issue(
                    "shards.kind",
                    "token shards are written by the window stage: add a \"window\" section (its max_length and stride are the reader's defaults)"
                )
            }
            if embedding != nil {
                issue(
                    "shards.kind",
                    "\"tokens\" stores ids only; embeddings need \"batches\" (or drop the embedding section and look rows up in the trainer)"
                )
            }
            if let window, window.shuffle != .none {
                issue(
                    "window.shuffle",
                    "with shards.kind \"tokens\" windows are cut and shuffled at read time (SluiceDataset(shuffle=True, seed=...)); set false"
                )
            }
        }
        if let embedding {
            if window == nil { issue("embedding", "embeddings are made per window: add a \"window\" section") }
            if let context = embedding.contextLength, let window, context < window.maxLength {
                issue(
                    "embedding.context_length",
                    "\(context) is shorter than window.max_length \(window.maxLength); every position needs a row")
            }
            if embedding.initializer == "pretrained" && (embedding.pretrained == nil) == (embedding.vectors == nil) {
                issue(
                    "embedding.pretrained",
                    embedding.pretrained == nil
                        ? "init \"pretrained\" needs \"pretrained\" (a safetensors file of tables) or \"vectors\" (word vectors for the token table)"
                        : "give \"pretrained\" or \"vectors\", not both")
            }
            if embedding.vectors != nil {
                if embedding.initializer != "pretrained" {
                    issue("embedding.vectors", "word vectors are used with init \"pretrained\"; set it")
                }
                if tokenizer?.words == nil {
                    issue(
                        "embedding.vectors",
                        "word vectors give one row per word: they need the word-level tokenizer (tokenizer.words)")
                }
            }
        }
        return issues
    }
}
