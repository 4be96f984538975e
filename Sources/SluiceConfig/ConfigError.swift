/// One problem in a config file, located by JSON path and, where possible, line and column.
public struct ConfigIssue: Sendable, CustomStringConvertible, Equatable {
    /// Dotted JSON path of the value (`window.stride`, `inputs[2]`), or "" for the root.
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public var description: String {
        let location = line.map { ":\($0):\(column ?? 1)" } ?? ""
        return "\(location)\(location.isEmpty ? "" : " ")\(path.isEmpty ? "" : path + ": ")\(message)"
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
        issues.map { issue in
            let location = issue.line.map { "\(file):\($0):\(issue.column ?? 1)" } ?? file
            return "\(location): \(issue.path.isEmpty ? "" : issue.path + ": ")\(issue.message)"
        }.joined(separator: "\n")
    }
}
