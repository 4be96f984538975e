/// A problem with one input: where it is (file, archive member, line, byte offset), what
/// went wrong, and what to do.
public struct IngestError: Error, Sendable, CustomStringConvertible {
    /// Why something was skipped or failed; also the keys of `report.json`'s `skipped` counts.
    public enum Reason: String, Sendable, CaseIterable, Codable {
        case unreadableFile = "unreadable_file"
        case corruptArchive = "corrupt_archive"
        case decompressionLimit = "decompression_limit"
        case malformedJSONL = "malformed_jsonl"
        case missingTextField = "missing_text_field"
        case invalidUTF8 = "invalid_utf8"
        case utf16Rejected = "utf16_rejected"
        case oversizedDocument = "oversized_document"
        case emptyDocument = "empty_document"
        case directoryMember = "directory_member"
        case linkMember = "link_member"
        case specialMember = "special_member"
        case nestedArchive = "nested_archive"
        case noInput = "no_input"
        /// An input that gave no document and nothing else to report (an empty archive).
        case emptyInput = "empty_input"
    }

    public var reason: Reason
    public var file: String
    public var member: String?
    /// 1-based line (JSONL records).
    public var line: Int?
    /// Byte offset in the file or member's decompressed stream.
    public var offset: Int?
    public var message: String

    public init(
        _ reason: Reason, file: String, member: String? = nil, line: Int? = nil, offset: Int? = nil, _ message: String
    ) {
        self.reason = reason
        self.file = file
        self.member = member
        self.line = line
        self.offset = offset
        self.message = message
    }

    public var description: String {
        var location = file
        if let member { location += ": member \"\(member)\"" }
        if let line { location += member == nil ? ":\(line)" : ", line \(line)" }
        if let offset { location += " at byte \(offset)" }
        return "\(location): \(message)"
    }
}
