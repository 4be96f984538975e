import Foundation

/// Where the repository and the read-only reference material (`../shared`) live.
public enum Fixtures {
    /// The repository root, found from this file's location.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared` beside the repository (goldens, rank file, corpus); tests that need it fail
    /// with a message saying so when it is absent, rather than passing vacuously.
    public static let sharedDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["SLUICE_SHARED"] {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// Whether `../shared` is there. Tests that compare against its goldens are disabled without
    /// it (`.enabled(if: Fixtures.hasShared, ...)`), with one line saying why; the rest run.
    public static let hasShared: Bool = FileManager.default.fileExists(
        atPath: sharedDirectory.appendingPathComponent("golden").path)

    /// GPT-2's vocabulary as the repository's `vocab/gpt2` holds it (scripts/setup.sh fetches it
    /// from a pinned PyPI wheel): what tests use when they need GPT-2 but not `../shared`.
    public static let gpt2Encoder = repositoryRoot.appendingPathComponent("vocab/gpt2/encoder.json").path
    public static let gpt2Merges = repositoryRoot.appendingPathComponent("vocab/gpt2/vocab.bpe").path

    public static func shared(_ relativePath: String) -> URL {
        sharedDirectory.appendingPathComponent(relativePath)
    }

    /// GPT-2's rank file from `../shared/vocab`.
    public static var gpt2RankFile: String { shared("vocab/gpt2.tiktoken").path }

    /// Reads a JSON file into Foundation objects.
    public static func json(_ url: URL) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }

    /// Reads a JSON Lines file into one Foundation object per line.
    public static func jsonLines(_ url: URL) throws -> [Any] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) }
    }
}

/// A fresh directory under the system temporary directory, removed when released.
public final class TemporaryDirectory: @unchecked Sendable {
    // Invariant: `url` never changes after init; the directory is only removed in deinit.
    public let url: URL

    public init(_ label: String = "sluice-test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `bytes` to `name` (creating parent directories) and returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let fileURL = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(
            at: fileURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: fileURL)
        return fileURL.path
    }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        try write(name, Array(text.utf8))
    }
}
