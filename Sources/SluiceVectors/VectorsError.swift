/// A problem with a vectors file or a query. `kind` is the Python exception gensim raises in
/// the same situation, so that answers of `sluice vectors query` compare with gensim's.
public struct VectorsError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case keyError = "KeyError"
        case valueError = "ValueError"
        case eofError = "EOFError"
        case unicodeDecodeError = "UnicodeDecodeError"
        case zeroDivisionError = "ZeroDivisionError"
        case typeError = "TypeError"
        /// The file cannot be read at all (missing, unreadable).
        case ioError = "OSError"
    }

    public var kind: Kind
    /// gensim's message where gensim has one (`Key 'x' not present in vocabulary`).
    public var message: String
    /// The file and where in it (line or record), for load errors.
    public var file: String?
    public var location: String?

    public init(_ kind: Kind, _ message: String, file: String? = nil, location: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.location = location
    }

    public var description: String {
        let place = [file, location].compactMap { $0 }.joined(separator: ", ")
        return place.isEmpty ? message : "\(place): \(message)"
    }
}
