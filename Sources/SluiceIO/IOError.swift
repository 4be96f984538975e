/// Everything that can go wrong reading or writing Sluice's files.
///
/// The description is one line: what failed, on which file (and byte offset), why, and what
/// to do — with the C library's or the OS's own words where there are some.
public struct IOError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case cannotOpen
        case cannotRead
        case cannotWrite
        case cannotRename
        case compression
        case decompression
        case truncated
        case checksumMismatch
        case malformedJSON
    }

    public var code: Code
    public var path: String
    /// Byte offset in `path` where the problem was seen, when known.
    public var offset: Int?
    public var message: String

    public init(_ code: Code, path: String, offset: Int? = nil, _ message: String) {
        self.code = code
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var description: String {
        let location = offset.map { "\(path): at byte \($0)" } ?? path
        return "\(location): \(message)"
    }
}
