import Foundation
import SluiceConfig
import SluiceIO

/// What one task needs to run besides its spec: the run's config, its output directory and a
/// way to report progress.
public struct TaskContext {
    public var configuration: Configuration
    public var layout: OutputLayout
    public var events: WorkerEvents
    /// The run was started with `--force`: the window task makes tables and shards even when
    /// they look too big for the free disk.
    public var allowLargeOutput: Bool
}

/// What a finished task tells its executor (the worker's final `done` message).
public struct TaskReport: Sendable, Equatable {
    public var message: String
    /// The task found its completion record intact and its identity unchanged: nothing was redone.
    public var reused: Bool
    /// Totals for progress: `bytes` of text, `tokens`, `documents`, `windows`.
    public var counters: [String: Int]

    public init(_ message: String, reused: Bool, counters: [String: Int] = [:]) {
        self.message = message
        self.reused = reused
        self.counters = counters
    }
}

/// One stage's tasks: run one, or find it done. Every stage file conforms; `Stage.runner` is
/// the only switch over stages.
protocol StageRunner {
    /// Runs `task`, or reports it reused when its completion record holds and records the same
    /// identity (the digest of exactly what determines its outputs).
    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport
}

extension Stage {
    var runner: any StageRunner.Type {
        switch self {
        case .ingest: IngestStage.self
        case .count: CountStage.self
        case .tokenizer: TokenizerStage.self
        case .tokenize: TokenizeStage.self
        case .window: WindowStage.self
        case .materialize: MaterializeStage.self
        case .finalize: FinalizeStage.self
        }
    }
}

/// What `sluice worker --task ID OUT` does: load the run's record and plan from `OUT/_work`,
/// find the task's spec, run it. A worker never re-plans and never re-reads the input tree.
public enum TaskRunner {
    public static func run(_ id: TaskID, layout: OutputLayout, events: WorkerEvents) throws -> TaskReport {
        do {
            let record = try RunRecord.load(layout)
            let configuration = try record.configuration()
            let spec = try Plan.task(id, layout: layout)
            let context = TaskContext(
                configuration: configuration, layout: layout, events: events,
                allowLargeOutput: record.allowLargeOutput)
            return try id.stage.runner.run(spec, context: context)
        } catch {
            var failure = PipelineError.classify(error)
            failure.task = id
            throw failure
        }
    }
}

/// Builds a task's identity: a SHA-256 over labelled values, so two values can never run
/// together into the same bytes. Each stage states what goes in; nothing execution-only
/// (workers, retries, executor, output path) ever does.
struct IdentityHasher {
    private var hasher = SHA256Hasher()

    /// - Parameter version: bump when the stage's output for the same inputs changes.
    init(_ stage: Stage, version: Int = 1) {
        add("stage", "\(stage.rawValue) v\(version)")
    }

    mutating func add(_ label: String, _ value: String) {
        let bytes = Array(value.utf8)
        hasher.update(Array("\(label) \(bytes.count)\n".utf8))
        hasher.update(bytes)
        hasher.update([0x0A])
    }

    /// A config section as resolved (defaults filled in), or its absence.
    mutating func add(_ label: String, section: JSONNode?) {
        add(label, section?.serialized(pretty: false) ?? "null")
    }

    mutating func add(_ label: String, _ values: [String]) {
        add(label, String(values.count))
        for value in values { add("-", value) }
    }

    func finalize() -> String { hasher.finalizeHex() }
}

enum Completion {
    /// Whether `path` has the recorded size and SHA-256.
    static func fileMatches(_ path: String, bytes: Int, sha256: String) -> Bool {
        guard fileHasSize(path, bytes) else { return false }
        return (try? SHA256Hasher.hex(ofFile: path)) == sha256
    }

    /// Whether `path` exists with `bytes` bytes (for records just written by their own task).
    static func fileHasSize(_ path: String, _ bytes: Int) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return false }
        return (attributes[.size] as? NSNumber)?.intValue == bytes
    }

    /// A file's bytes, checked against the SHA-256 its record holds.
    static func readVerified(_ path: String, sha256: String) throws -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw PipelineError.classify(error)
        }
        guard SHA256Hasher.hex(bytes) == sha256 else {
            throw PipelineError(
                .damagedOutput, "\(path) does not match its record; run again — the task that wrote it is redone",
                path: path)
        }
        return bytes
    }

    /// Decodes an upstream task's completion record, or says which task has to run first.
    static func upstream<T: Decodable>(_ type: T.Type, _ path: String, from task: TaskID, for reader: TaskID) throws
        -> T
    {
        do {
            return try StableJSON.decode(type, from: path)
        } catch {
            throw PipelineError(
                .missingInput,
                "\(reader) needs \(task) first: \(path) is missing or unreadable — run \(task) (sluice worker --task \(task)) or sluice run",
                path: path)
        }
    }
}
