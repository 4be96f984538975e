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

    public var inputFiles = 0
    public var inputBytes = 0
    public var documents = 0
    public var documentBytes = 0
    /// Counts per `IngestError.Reason` raw value.
    public var skipped: [String: Count] = [:]
    public var invalidUTF8Replaced = 0
    public var documentsWithInvalidUTF8 = 0
    public var utf16Decoded = 0
    public var byteOrderMarksStripped = 0
    public var loneSurrogatesReplaced = 0
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
                    offset: error.offset, message: error.message))
        } else {
            problemsNotListed += 1
        }
    }

    public var skippedCount: Int { skipped.values.reduce(0) { $0 + $1.count } }

    /// Adds another task's report (reports of parts are merged in part order).
    public mutating func merge(_ other: IngestReport) {
        inputFiles += other.inputFiles
        inputBytes += other.inputBytes
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
        for problem in other.problems {
            if problems.count < Self.problemLimit { problems.append(problem) } else { problemsNotListed += 1 }
        }
        problemsNotListed += other.problemsNotListed
    }

    enum CodingKeys: String, CodingKey {
        case inputFiles = "input_files"
        case inputBytes = "input_bytes"
        case documents
        case documentBytes = "document_bytes"
        case skipped
        case invalidUTF8Replaced = "invalid_utf8_replaced"
        case documentsWithInvalidUTF8 = "documents_with_invalid_utf8"
        case utf16Decoded = "utf16_decoded"
        case byteOrderMarksStripped = "byte_order_marks_stripped"
        case loneSurrogatesReplaced = "lone_surrogates_replaced"
        case problems
        case problemsNotListed = "problems_not_listed"
    }
}
