/// One problem in a config file, located by JSON path and, where possible, line and column.
public struct ConfigIssue: Sendable, CustomStringConvertible, Equatable {
    /// Dotted JSON path of the value (`window.stride`, `inputs[2]`), or "" for the root.
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String
    /// The preset file the value came from, when not the config itself (`extends`).
    public var file: String?

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String, file: String? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.file = file
    }

    public var description: String { description(in: nil) }

    /// `FILE:LINE:COLUMN: json.path: message`, with whichever parts are known.
    public func description(in file: String?) -> String {
        var location = self.file ?? file ?? ""
        if let line { location += ":\(line):\(column ?? 1)" }
        return [location, path, message].filter { !$0.isEmpty }.joined(separator: ": ")
    }
}

/// Why a config could not be used: every problem found, each on its own line.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    public var description: String {
        issues.map { $0.description(in: file) }.joined(separator: "\n")
    }
}
