/// Everything that can go wrong while loading a vocabulary or encoding with it.
///
/// One line each: what failed, where (file and line when there is one), why, what to do.
public struct BPEError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case unreadableFile
        case malformedLine
        case badBase64
        case duplicateToken
        case duplicateRank
        case missingRank
        case missingByteToken
        case inconsistentMerges
        case unknownTokenID
        case disallowedSpecialToken
        case invalidSpecialToken
    }

    public var code: Code
    /// The file the problem is in, when there is one.
    public var file: String?
    /// 1-based line number in `file`, when the problem is on one line.
    public var line: Int?
    public var message: String

    public init(_ code: Code, file: String? = nil, line: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        var location = ""
        if let file { location = file }
        if let line { location += location.isEmpty ? "line \(line)" : ":\(line)" }
        return location.isEmpty ? message : "\(location): \(message)"
    }
}
