/// How an input (or archive member) is read, decided by its name.
enum InputKind: Equatable {
    /// A tar/zip/7z/… archive, possibly compressed: one document per regular member.
    case archive
    /// A single compressed file: its content is one document (or JSONL if the inner name says so).
    case compressed(innerName: String)
    /// One JSON object per line.
    case jsonl
    /// Any other file: one document.
    case plain

    static let compressionSuffixes = [".gz", ".bz2", ".xz", ".zst", ".zstd", ".lz4", ".lzma", ".z", ".lz", ".lzo"]
    static let archiveSuffixes = [
        ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".tlz4", ".zip", ".7z", ".cpio", ".iso", ".rar", ".xar",
        ".lha", ".lzh", ".cab", ".warc", ".jar",
    ]
    static let jsonlSuffixes = [".jsonl", ".ndjson"]

    static func of(name: String) -> InputKind {
        let lower = name.lowercased()
        if archiveSuffixes.contains(where: lower.hasSuffix) { return .archive }
        if let suffix = compressionSuffixes.first(where: lower.hasSuffix) {
            let inner = String(name.dropLast(suffix.count))
            return inner.lowercased().hasSuffix(".tar") ? .archive : .compressed(innerName: inner)
        }
        if jsonlSuffixes.contains(where: lower.hasSuffix) { return .jsonl }
        return .plain
    }

    var needsLibarchive: Bool {
        switch self {
        case .archive, .compressed: true
        case .jsonl, .plain: false
        }
    }
}
