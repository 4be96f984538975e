import SluiceConfig
import SluiceIO
import SluiceIngest

/// The tasks of a run, derived from the config and the input files alone — never from the
/// worker count or timing — so every task's output name is stable across runs and resumes.
public struct Plan: Sendable {
    /// One ingest task: a run of consecutive inputs (in path order) of about `part_bytes`.
    public struct IngestTask: Sendable, Equatable {
        public var part: Int
        public var inputs: [InputFile]
    }

    public var ingest: [IngestTask]
    /// Whether a tokenize task follows each ingest part.
    public var tokenize: Bool
    /// Whether the vocabulary is learned: a count task per part, before the tokenizer task.
    public var train: Bool

    /// The input files, expanded and sorted, that the tasks were cut from.
    public var files: [InputFile]

    /// Expands the config's inputs now.
    public init(configuration: Configuration) throws {
        let patterns = configuration.inputs.map(configuration.resolvePath)
        let files: [InputFile]
        do {
            files = try InputResolver.expand(patterns, baseDirectory: configuration.baseDirectory)
        } catch {
            throw PipelineError("\(configuration.file): inputs: \(error)")
        }
        self.init(configuration: configuration, files: files)
    }

    init(configuration: Configuration, files: [InputFile]) {
        self.files = files
        ingest = Self.group(files, partBytes: configuration.ingest.partBytes)
        tokenize = configuration.tokenizer != nil
        train = configuration.tokenizer?.train != nil
    }

    /// The input list a run recorded in `_work/inputs.json`, so that every task of the run
    /// sees the same files (even if the input directories change while it runs) and no worker
    /// re-walks them.
    struct RecordedInputs: Codable {
        var format = "sluice.inputs.v1"
        var configSHA256: String
        var files: [InputFile]
        enum CodingKeys: String, CodingKey {
            case format
            case configSHA256 = "config_sha256"
            case files
        }
    }

    /// The plan of the run that made `layout` (from its recorded input list) when there is
    /// one for this config; else a fresh expansion.
    public static func forTasks(configuration: Configuration, layout: OutputLayout) throws -> Plan {
        if let recorded = try? StableJSON.decode(RecordedInputs.self, from: layout.recordedInputs),
            recorded.configSHA256 == configuration.resolvedSHA256
        {
            return Plan(configuration: configuration, files: recorded.files)
        }
        return try Plan(configuration: configuration)
    }

    /// Records the input list for the run's tasks (see `forTasks`).
    public func record(configuration: Configuration, layout: OutputLayout) throws {
        // Written with JSONNode (several times faster than JSONEncoder on 10⁴–10⁶ files); read
        // back as `RecordedInputs`.
        func string(_ text: String) -> JSONNode { JSONNode(.string(Array(text.utf8))) }
        let node = JSONNode(
            .object([
                ("config_sha256", string(configuration.resolvedSHA256)),
                (
                    "files",
                    JSONNode(
                        .array(
                            files.map { file in
                                JSONNode(
                                    .object([
                                        ("byteCount", JSONNode(.integer(Int64(file.byteCount)))),
                                        ("name", string(file.name)), ("path", string(file.path)),
                                    ]))
                            }))
                ),
                ("format", string("sluice.inputs.v1")),
            ]))
        try AtomicFileWriter.write(node.serializedBytes(pretty: false) + [0x0A], to: layout.recordedInputs)
    }

    /// Consecutive inputs until a group reaches `partBytes`; an input larger than that is a
    /// task of its own — or, if it is an uncompressed JSON Lines file, one task per
    /// `partBytes` slice of it (lines belong to the slice they start in), so one huge file
    /// still spreads over the workers.
    static func group(_ files: [InputFile], partBytes: Int) -> [IngestTask] {
        var tasks: [IngestTask] = []
        var current: [InputFile] = []
        var size = 0
        func flush() {
            if !current.isEmpty { tasks.append(IngestTask(part: tasks.count, inputs: current)) }
            current = []
            size = 0
        }
        for file in files {
            if file.byteCount > partBytes && file.isSplittable {
                flush()
                for start in stride(from: 0, to: file.byteCount, by: partBytes) {
                    var slice = file
                    slice.byteRange = start..<min(start + partBytes, file.byteCount)
                    tasks.append(IngestTask(part: tasks.count, inputs: [slice]))
                }
                continue
            }
            if !current.isEmpty && size + file.byteCount > partBytes { flush() }
            current.append(file)
            size += file.byteCount
        }
        flush()
        return tasks
    }

    public static func partName(_ part: Int) -> String {
        let digits = String(part)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}
