/// What an ingest task (or a whole run) read, kept and skipped: every input byte is in a
/// document or counted here. Written into `report.json` and each part's sidecar.
public struct IngestReport: Sendable, Codable, Equatable {
    public struct Count: Sendable, Codable, Equatable {
        public var count = 0
        /// Bytes of the skipped item, where known.
        public var bytes = 0
    }

    /// One skipped item or failure, located precisely.
    public struct Problem: Sendable, Codable, Equatable {
        public var reason: String
        public var file: String
        public var member: String?
        public var line: Int?
        public var offset: Int?
        public var message: String
    }

    /// An input that was not read completely: what was lost, and where the reading stopped.
    public struct PartialInput: Sendable, Codable, Equatable {
        public var file: String
        public var member: String?
        /// Byte offset in the file (compressed) where reading stopped, where known.
        public var offset: Int?
        public var reason: String
    }

    /// Lossy repairs in one file, for the report's per-file list.
    public struct FileRepairs: Sendable, Codable, Equatable {
        public var file: String
        public var invalidUTF8Replaced = 0
        public var loneSurrogatesReplaced = 0

        enum CodingKeys: String, CodingKey {
            case file
            case invalidUTF8Replaced = "invalid_utf8_replaced"
            case loneSurrogatesReplaced = "lone_surrogates_replaced"
        }
    }

    public var inputFiles = 0
    public var inputBytes = 0
    /// Every entry seen: plain files, archive members, JSONL records (blank lines are not
    /// records) and the unread remainder of a damaged input, each once. The counts add up:
    /// `entries == documents + skippedCount + directories`.
    public var entries = 0
    /// Directory entries of archives: structure, not documents, so not `skipped`.
    public var directories = 0
    public var documents = 0
    public var documentBytes = 0
    /// Counts per `IngestError.Reason` raw value.
    public var skipped: [String: Count] = [:]
    public var invalidUTF8Replaced = 0
    public var documentsWithInvalidUTF8 = 0
    public var utf16Decoded = 0
    public var byteOrderMarksStripped = 0
    public var loneSurrogatesReplaced = 0
    /// JSONL records whose objects repeated a key (the last value was used, as Python's json does).
    public var duplicateKeysResolved = 0
    /// Inputs not read completely (truncated, corrupt, stopped by a limit), in input order.
    public var partialInputs: [PartialInput] = []
    /// The first `problemLimit` files with lossy repairs, with their counts.
    public var repairsByFile: [FileRepairs] = []
    /// The first `problemLimit` problems in input order; `problemsNotListed` counts the rest.
    public var problems: [Problem] = []
    public var problemsNotListed = 0
    public static let problemLimit = 1000

    public init() {}

    /// Counts a skipped item; `listed` also adds it to `problems` (up to `problemLimit`).
    public mutating func record(_ error: IngestError, bytes: Int = 0, listed: Bool = true) {
        skipped[error.reason.rawValue, default: Count()].count += 1
        skipped[error.reason.rawValue, default: Count()].bytes += bytes
        guard listed else { return }
        if problems.count < Self.problemLimit {
            problems.append(
                Problem(
                    reason: error.reason.rawValue, file: error.file, member: error.member, line: error.line,
                    offset: error.offset, message: IngestError.escaped(error.message)))
        } else {
            problemsNotListed += 1
        }
    }

    public var skippedCount: Int { skipped.values.reduce(0) { $0 + $1.count } }

    /// Marks an input as not read completely.
    /// An input is listed once, where its first loss is (a damaged member and the remainder
    /// it made unreadable are one partial input).
    public mutating func markPartial(_ error: IngestError) {
        guard partialInputs.last?.file != error.file else { return }
        partialInputs.append(
            PartialInput(file: error.file, member: error.member, offset: error.offset, reason: error.reason.rawValue))
    }

    /// Adds lossy repairs made in `file` to its entry (the last one, as files are read in turn).
    public mutating func addRepairs(file: String, invalidUTF8: Int = 0, surrogates: Int = 0) {
        guard invalidUTF8 + surrogates > 0 else { return }
        if repairsByFile.last?.file != file {
            guard repairsByFile.count < Self.problemLimit else { return }
            repairsByFile.append(FileRepairs(file: file))
        }
        repairsByFile[repairsByFile.count - 1].invalidUTF8Replaced += invalidUTF8
        repairsByFile[repairsByFile.count - 1].loneSurrogatesReplaced += surrogates
    }

    /// Adds another task's report (reports of parts are merged in part order).
    public mutating func merge(_ other: IngestReport) {
        inputFiles += other.inputFiles
        inputBytes += other.inputBytes
        entries += other.entries
        directories += other.directories
        documents += other.documents
        documentBytes += other.documentBytes
        for (reason, count) in other.skipped {
            skipped[reason, default: Count()].count += count.count
            skipped[reason, default: Count()].bytes += count.bytes
        }
        invalidUTF8Replaced += other.invalidUTF8Replaced
        documentsWithInvalidUTF8 += other.documentsWithInvalidUTF8
        utf16Decoded += other.utf16Decoded
        byteOrderMarksStripped += other.byteOrderMarksStripped
        loneSurrogatesReplaced += other.loneSurrogatesReplaced
        duplicateKeysResolved += other.duplicateKeysResolved
        for partial in other.partialInputs where partialInputs.last?.file != partial.file {
            partialInputs.append(partial)
        }
        for repairs in other.repairsByFile {
            addRepairs(
                file: repairs.file, invalidUTF8: repairs.invalidUTF8Replaced, surrogates: repairs.loneSurrogatesReplaced
            )
        }
        for problem in other.problems {
            if problems.count < Self.problemLimit { problems.append(problem) } else { problemsNotListed += 1 }
        }
        problemsNotListed += other.problemsNotListed
    }

    enum CodingKeys: String, CodingKey {
        case inputFiles = "input_files"
        case inputBytes = "input_bytes"
        case entries, directories
        case documents
        case documentBytes = "document_bytes"
        case skipped
        case invalidUTF8Replaced = "invalid_utf8_replaced"
        case documentsWithInvalidUTF8 = "documents_with_invalid_utf8"
        case utf16Decoded = "utf16_decoded"
        case byteOrderMarksStripped = "byte_order_marks_stripped"
        case loneSurrogatesReplaced = "lone_surrogates_replaced"
        case duplicateKeysResolved = "duplicate_keys_resolved"
        case partialInputs = "partial_inputs"
        case repairsByFile = "repairs_by_file"
        case problems
        case problemsNotListed = "problems_not_listed"
    }
}
