import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One input file after expansion: where to open it, how to name it, its size on disk.
public struct InputFile: Sendable, Equatable, Codable {
    /// The path to open (resolved against the config directory).
    public var path: String
    /// The name used in reports and sidecars: relative to the config directory when the file
    /// is under it, so outputs do not depend on where the checkout lives.
    public var name: String
    public var byteCount: Int
    /// For a large JSON Lines file cut into several ingest tasks: the bytes whose lines this
    /// task reads (each line belongs to the slice where it starts). Nil: the whole file.
    public var byteRange: Range<Int>?

    public init(path: String, name: String? = nil, byteCount: Int, byteRange: Range<Int>? = nil) {
        self.path = path
        self.name = name ?? path
        self.byteCount = byteCount
        self.byteRange = byteRange
    }

    /// What sidecars record: the name, plus the byte range for a slice.
    public var identity: String {
        byteRange.map { "\(name)#bytes=\($0.lowerBound)-\($0.upperBound)" } ?? name
    }

    /// Whether a file this size can be cut into line-aligned byte ranges (uncompressed JSONL).
    public var isSplittable: Bool { InputKind.of(name: path) == .jsonl }
}

/// Expands config `inputs` (files, directories, glob patterns) into a sorted list of files.
///
/// Directories are walked recursively; names starting with "." are not inputs. The result is
/// sorted by path bytes and free of duplicates, so it never depends on directory-listing
/// order. A pattern or path that names nothing is an error, not an empty corpus.
public enum InputResolver {
    /// - Parameters:
    ///   - patterns: paths or glob patterns, already resolved against `baseDirectory`.
    ///   - baseDirectory: names of files under it are given relative to it.
    public static func expand(_ patterns: [String], baseDirectory: String? = nil) throws(IngestError) -> [InputFile] {
        var sizes: [String: Int] = [:]  // each file stat'ed once, where it was found
        for pattern in patterns {
            let matches = try expandOne(pattern)
            guard !matches.isEmpty else {
                throw IngestError(
                    .noInput, file: pattern,
                    "no input file here (not a file, a directory with files, or a matching pattern); check the path in \"inputs\""
                )
            }
            for (path, size) in matches { sizes[path] = size }
        }
        var files: [InputFile] = []
        for (path, size) in sizes {
            var name = path
            if let base = baseDirectory.map({ $0.hasSuffix("/") ? $0 : $0 + "/" }), path.hasPrefix(base) {
                name = String(path.dropFirst(base.count))
            }
            files.append(InputFile(path: path, name: name, byteCount: size))
        }
        // Keys made once, not once per comparison.
        return files.map { (key: Array($0.path.utf8), file: $0) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            .map(\.file)
    }

    /// Files (with their sizes) that `pattern` names.
    static func expandOne(_ pattern: String) throws(IngestError) -> [(path: String, size: Int)] {
        if pattern.contains(where: { "*?[".contains($0) }) {
            var results: [(path: String, size: Int)] = []
            for match in glob(pattern) { results.append(contentsOf: try expandOne(match)) }
            return results
        }
        var info = stat()
        guard stat(pattern, &info) == 0 else {
            throw IngestError(
                .noInput, file: pattern,
                "does not exist; check the path in \"inputs\" (relative paths start at the config file's directory)")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return [(pattern, Int(info.st_size))] }
        return walk(pattern)
    }

    static func walk(_ directory: String) -> [(path: String, size: Int)] {
        var results: [(path: String, size: Int)] = []
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        for entry in entries where !entry.hasPrefix(".") {
            let path = directory.hasSuffix("/") ? directory + entry : directory + "/" + entry
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                var linkInfo = stat()
                // A symlinked directory could loop; only real directories are walked.
                if lstat(path, &linkInfo) == 0 && linkInfo.st_mode & S_IFMT == S_IFDIR {
                    results.append(contentsOf: walk(path))
                }
            case S_IFREG: results.append((path, Int(info.st_size)))
            default: continue
            }
        }
        return results
    }

    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        var matches: [String] = []
        for index in 0..<Int(result.gl_pathc) {
            if let path = result.gl_pathv[index] { matches.append(String(cString: path)) }
        }
        return matches
    }
}
