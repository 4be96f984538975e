import SluiceConfig
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

    public init(configuration: Configuration) throws {
        let patterns = configuration.inputs.map(configuration.resolvePath)
        let files: [InputFile]
        do {
            files = try InputResolver.expand(patterns, baseDirectory: configuration.baseDirectory)
        } catch {
            throw PipelineError("\(configuration.file): inputs: \(error)")
        }
        ingest = Self.group(files, partBytes: configuration.ingest.partBytes)
        tokenize = configuration.tokenizer != nil
    }

    /// Consecutive inputs until a group reaches `partBytes`; an input larger than that is a
    /// task of its own.
    static func group(_ files: [InputFile], partBytes: Int) -> [IngestTask] {
        var tasks: [IngestTask] = []
        var current: [InputFile] = []
        var size = 0
        for file in files {
            if !current.isEmpty && size + file.byteCount > partBytes {
                tasks.append(IngestTask(part: tasks.count, inputs: current))
                current = []
                size = 0
            }
            current.append(file)
            size += file.byteCount
        }
        if !current.isEmpty { tasks.append(IngestTask(part: tasks.count, inputs: current)) }
        return tasks
    }

    public static func partName(_ part: Int) -> String {
        let digits = String(part)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}
