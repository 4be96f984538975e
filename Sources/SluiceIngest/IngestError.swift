/// A problem with one input: where it is (file, archive member, line, byte offset), what
/// went wrong, and what to do.
public struct IngestError: Error, Sendable, CustomStringConvertible {
    /// Why something was skipped or failed; also the keys of `report.json`'s `skipped` counts.
    public enum Reason: String, Sendable, CaseIterable, Codable {
        case unreadableFile = "unreadable_file"
        /// The archive cannot be opened or its structure is damaged (headers, not data).
        case corruptArchive = "corrupt_archive"
        /// One member's data failed to decompress or had the wrong size; reading went on.
        case corruptMember = "corrupt_member"
        case crcMismatch = "crc_mismatch"
        case encrypted
        /// After damage the rest of the input could not be read (a tar in one compressed
        /// stream); `offset` says where, in the file's compressed bytes.
        case unreadRemainder = "unread_remainder"
        /// Content that is not text (ContentSniffer's rule).
        case binary
        /// A name starting with "." under `ingest.hidden_files: "skip"`.
        case hiddenFile = "hidden_file"
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

    /// One line: control characters in names and messages (a newline in libarchive's words, a
    /// tab in a member name) are escaped.
    public var description: String {
        var location = Self.escaped(file)
        if let member { location += ": member \"\(Self.escaped(member))\"" }
        if let line { location += member == nil ? ":\(line)" : ", line \(line)" }
        if let offset { location += " at byte \(offset)" }
        return "\(location): \(Self.escaped(message))"
    }

    /// `text` with C0 controls and DEL as `\n`, `\t`, `\r` or `\u{1b}`-style escapes.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return text }
        var output = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: output += "\\n"
            case 0x09: output += "\\t"
            case 0x0D: output += "\\r"
            case 0..<0x20, 0x7F: output += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: output.unicodeScalars.append(scalar)
            }
        }
        return output
    }
}
