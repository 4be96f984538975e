import SluiceIngest

/// The stages of a run, in dependency order: a task only ever needs tasks of earlier stages.
public enum Stage: String, Codable, Sendable, CaseIterable, Comparable {
    case ingest, count, tokenizer, tokenize, window, materialize, finalize

    /// Position in dependency order.
    public var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }

    public static func < (lhs: Stage, rhs: Stage) -> Bool { lhs.rank < rhs.rank }

    /// Whether the stage has one task per part or shard (`ingest/part-00003`), or a single one.
    public var isIndexed: Bool {
        switch self {
        case .ingest, .count, .tokenize, .materialize: true
        case .tokenizer, .window, .finalize: false
        }
    }

    /// What the index of a task of this stage counts.
    var indexPrefix: String { self == .materialize ? "shard-" : "part-" }
}

/// A task's name: its stage, and its part or shard number where the stage has several tasks.
/// Written `ingest/part-00003`, `materialize/shard-00002`, `window` — the only spelling, used by
/// the plan, the executors, `sluice worker --task`, logs and the report.
public struct TaskID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let stage: Stage
    /// The part (ingest, count, tokenize) or shard (materialize) number; nil for single tasks.
    public let index: Int?

    public init(_ stage: Stage, _ index: Int? = nil) {
        precondition(stage.isIndexed == (index != nil), "\(stage) tasks \(stage.isIndexed ? "need" : "take no") index")
        self.stage = stage
        self.index = index
    }

    public static let tokenizer = TaskID(.tokenizer)
    public static let window = TaskID(.window)
    public static let finalize = TaskID(.finalize)

    /// `part-00003` / `shard-00002`: the base name of the task's files.
    public var unitName: String? {
        index.map { stage.indexPrefix + Self.fiveDigits($0) }
    }

    public var description: String { unitName.map { "\(stage.rawValue)/\($0)" } ?? stage.rawValue }

    /// Parses the spelling `description` gives; nil for anything else.
    public init?(parsing text: String) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let stage = Stage(rawValue: String(pieces[0])) else { return nil }
        if pieces.count == 1 {
            guard !stage.isIndexed else { return nil }
            self.init(stage)
            return
        }
        guard pieces.count == 2, stage.isIndexed, pieces[1].hasPrefix(stage.indexPrefix) else { return nil }
        let digits = pieces[1].dropFirst(stage.indexPrefix.count)
        guard digits.count >= 5, digits.allSatisfy(\.isASCII), let index = Int(digits), index >= 0,
            Self.fiveDigits(index) == digits
        else { return nil }
        self.init(stage, index)
    }

    public static func < (lhs: TaskID, rhs: TaskID) -> Bool {
        lhs.stage != rhs.stage ? lhs.stage < rhs.stage : (lhs.index ?? 0) < (rhs.index ?? 0)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = TaskID(parsing: text) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "not a task id: \"\(text)\""))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    static func fiveDigits(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}

/// One task of the plan: everything an executor needs to schedule it and a worker needs to run
/// it. Tasks read files and write files and nothing else; `writes` names every file it makes
/// (relative to the output directory), so what no task of a plan writes is not part of the output.
public struct TaskSpec: Codable, Sendable, Equatable {
    public var id: TaskID
    /// The tasks whose outputs this one reads.
    public var needs: [TaskID]
    /// Stages every task of which this one reads, including tasks the plan expands later
    /// (finalize reads every materialize shard, whose number the window task fixes).
    public var needsEvery: [Stage]
    /// What it reads besides `inputs`: paths relative to the output directory, or the config's files.
    public var reads: [String]
    /// What it writes, relative to the output directory.
    public var writes: [String]
    /// Its share of its stage's work — input bytes, or batches for materialize — for progress.
    public var weight: Int
    /// Ingest: the input files (or JSON Lines byte ranges) it reads, in order.
    public var inputs: [InputFile]?
    /// Materialize: the batches of its shard.
    public var batches: BatchRange?

    public struct BatchRange: Codable, Sendable, Equatable {
        public var first: Int
        public var count: Int
    }

    public init(
        id: TaskID, needs: [TaskID] = [], needsEvery: [Stage] = [], reads: [String] = [], writes: [String] = [],
        weight: Int = 0, inputs: [InputFile]? = nil, batches: BatchRange? = nil
    ) {
        self.id = id
        self.needs = needs
        self.needsEvery = needsEvery
        self.reads = reads
        self.writes = writes
        self.weight = weight
        self.inputs = inputs
        self.batches = batches
    }

    /// What it reads, in a few words, for failure messages.
    public var readsSummary: String {
        let reads = inputs?.map(\.identity) ?? reads
        return switch reads.count {
        case 0: "reads nothing"
        case 1: "reads \(reads[0])"
        default: "reads \(reads.count) inputs from \(reads[0])"
        }
    }

    enum CodingKeys: String, CodingKey {
        case id, needs
        case needsEvery = "needs_every"
        case reads, writes, weight, inputs, batches
    }
}
