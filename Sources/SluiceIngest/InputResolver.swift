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
    /// The path's bytes when they are not valid UTF-8 (`path` and `name` then show them
    /// escaped); nil otherwise.
    public var rawPath: [UInt8]?
    /// Found by a folder walk or glob under a name starting with "." (a hidden directory is one
    /// entry): read or skipped per `ingest.hidden_files`.
    public var hidden = false

    public init(
        path: String, name: String? = nil, byteCount: Int, byteRange: Range<Int>? = nil, rawPath: [UInt8]? = nil,
        hidden: Bool = false
    ) {
        self.path = path
        self.name = name ?? path
        self.byteCount = byteCount
        self.byteRange = byteRange
        self.rawPath = rawPath
        self.hidden = hidden
    }

    enum CodingKeys: String, CodingKey {
        case path, name, byteCount, byteRange, rawPath, hidden
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decode(String.self, forKey: .path)
        name = try container.decode(String.self, forKey: .name)
        byteCount = try container.decode(Int.self, forKey: .byteCount)
        byteRange = try container.decodeIfPresent(Range<Int>.self, forKey: .byteRange)
        rawPath = try container.decodeIfPresent([UInt8].self, forKey: .rawPath)
        hidden = try container.decodeIfPresent(Bool.self, forKey: .hidden) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(name, forKey: .name)
        try container.encode(byteCount, forKey: .byteCount)
        try container.encodeIfPresent(byteRange, forKey: .byteRange)
        try container.encodeIfPresent(rawPath, forKey: .rawPath)
        if hidden { try container.encode(hidden, forKey: .hidden) }
    }

    /// The path's bytes, exactly as the file system holds them.
    public var pathBytes: [UInt8] { rawPath ?? Array(path.utf8) }

    /// Calls `body` with the path as a C string of its exact bytes.
    public func withOpenPath<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        let cString = pathBytes.map { CChar(bitPattern: $0) } + [0]
        return cString.withUnsafeBufferPointer { buffer in buffer.baseAddress.map(body) ?? body("") }
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
/// Directories are walked recursively. Paths are bytes: they are compared, de-duplicated and
/// sorted as the bytes the file system holds (NFC and NFD spellings of a name are two files),
/// so the result never depends on directory-listing order or on Unicode equivalence; a name
/// that is not valid UTF-8 is kept in `rawPath` and shown escaped. Names starting with "."
/// found by the walk or a glob are listed as `hidden` (a hidden directory as one entry, not
/// walked) unless `readHidden`. A pattern or path that names nothing is an error, not an
/// empty corpus.
public enum InputResolver {
    /// - Parameters:
    ///   - patterns: paths or glob patterns, already resolved against `baseDirectory`.
    ///   - baseDirectory: names of files under it are given relative to it.
    ///   - readHidden: walk into hidden directories and list hidden files as ordinary inputs.
    public static func expand(_ patterns: [String], baseDirectory: String? = nil, readHidden: Bool = false)
        throws(IngestError) -> [InputFile]
    {
        var found: [[UInt8]: Found] = [:]  // each file stat'ed once, where it was found
        for pattern in patterns {
            let matches = try expandOne(pattern, readHidden: readHidden)
            guard !matches.isEmpty else {
                throw IngestError(
                    .noInput, file: pattern,
                    "no input file here (not a file, a directory with files, or a matching pattern); check the path in \"inputs\""
                )
            }
            for match in matches { found[match.path] = match }
        }
        let base = baseDirectory.map { Array(($0.hasSuffix("/") ? $0 : $0 + "/").utf8) }
        return found.values.sorted { $0.path.lexicographicallyPrecedes($1.path) }.map { match in
            var nameBytes = match.path
            if let base, nameBytes.starts(with: base) { nameBytes.removeFirst(base.count) }
            let valid = PathBytes.isValidUTF8(match.path)
            return InputFile(
                path: PathBytes.display(match.path),
                name: PathBytes.display(nameBytes) + (match.isDirectory ? "/" : ""),
                byteCount: match.size, rawPath: valid ? nil : match.path, hidden: match.hidden)
        }
    }

    struct Found {
        var path: [UInt8]
        var size: Int
        var hidden = false
        var isDirectory = false
    }

    /// Whether a path has a component starting with "." (other than "." and "..").
    public static func isHidden(_ path: String) -> Bool {
        path.split(separator: "/").contains { $0.hasPrefix(".") && $0 != "." && $0 != ".." }
    }

    /// Files (with their sizes) that `pattern` names.
    static func expandOne(_ pattern: String, readHidden: Bool) throws(IngestError) -> [Found] {
        if pattern.contains(where: { "*?[".contains($0) }) {
            var results: [Found] = []
            for match in glob(pattern) {
                let name = match.split(separator: UInt8(ascii: "/")).last ?? []
                if !readHidden && name.first == UInt8(ascii: ".") {
                    results.append(Found(path: match, size: size(of: match), hidden: true))
                    continue
                }
                results.append(contentsOf: try expandOne(bytes: match, readHidden: readHidden))
            }
            return results
        }
        return try expandOne(bytes: Array(pattern.utf8), readHidden: readHidden)
    }

    static func expandOne(bytes path: [UInt8], readHidden: Bool) throws(IngestError) -> [Found] {
        var info = stat()
        guard stat(cString(path), &info) == 0 else {
            throw IngestError(
                .noInput, file: PathBytes.display(path),
                "does not exist; check the path in \"inputs\" (relative paths start at the config file's directory)")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return [Found(path: path, size: Int(info.st_size))] }
        var results: [Found] = []
        walk(path, readHidden: readHidden, into: &results)
        return results
    }

    static func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }

    static func size(of path: [UInt8]) -> Int {
        var info = stat()
        return stat(cString(path), &info) == 0 && info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : 0
    }

    /// Entry names as bytes (readdir), never through `String`.
    static func walk(_ directory: [UInt8], readHidden: Bool, into results: inout [Found]) {
        guard let handle = opendir(cString(directory)) else { return }
        var names: [[UInt8]] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        closedir(handle)
        let prefix = directory.last == UInt8(ascii: "/") ? directory : directory + [UInt8(ascii: "/")]
        for name in names {
            let path = prefix + name
            var info = stat()
            guard stat(cString(path), &info) == 0 else { continue }
            let hidden = !readHidden && name.first == UInt8(ascii: ".")
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                if hidden {
                    results.append(Found(path: path, size: 0, hidden: true, isDirectory: true))
                    continue
                }
                var linkInfo = stat()
                // A symlinked directory could loop; only real directories are walked.
                if lstat(cString(path), &linkInfo) == 0 && linkInfo.st_mode & S_IFMT == S_IFDIR {
                    walk(path, readHidden: readHidden, into: &results)
                }
            case S_IFREG: results.append(Found(path: path, size: Int(info.st_size), hidden: hidden))
            default: continue
            }
        }
    }

    static func glob(_ pattern: String) -> [[UInt8]] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        var matches: [[UInt8]] = []
        for index in 0..<Int(result.gl_pathc) {
            if let path = result.gl_pathv[index] { matches.append(PathBytes.of(path)) }
        }
        return matches
    }
}
