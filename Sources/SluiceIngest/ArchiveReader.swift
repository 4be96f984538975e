internal import CSluiceArchive

/// Owns one libarchive read handle (`archive_read_new` … `archive_read_free`).
///
/// Members are streamed, never extracted: names are data only, nothing is written to disk.
final class ArchiveReader {
    let handle: OpaquePointer
    /// Kept alive while a nested archive reads through it.
    private var nestedSource: NestedSource?
    /// Decompressed bytes the reader has handed out (kept by the caller, for the ratio limit).
    var produced = 0

    /// Which formats the reader accepts.
    enum Mode {
        /// One compressed stream, read as a single member (`doc.txt.gz`): no archive formats, or
        /// a stream of zeros would be taken for an empty tar and its bytes lost.
        case raw
        /// Archive formats only (`.tar.gz`, `.zip`, …).
        case archive
        /// Archive formats, else one raw stream: for data sniffed as compressed under a name
        /// that does not say what is inside.
        case any
    }

    /// What `nextMember` found.
    enum Header {
        /// `encrypted`: the entry's data (or its metadata) is encrypted; it cannot be read.
        case member(name: String, kind: MemberKind, declaredSize: Int?, encrypted: Bool)
        case end
        /// The archive is damaged here; `fatal` means nothing more can be read from it.
        case damaged(message: String, fatal: Bool)
    }

    enum MemberKind { case regular, directory, link, special }

    private init(handle: OpaquePointer) { self.handle = handle }

    deinit {
        archive_read_free(handle)
    }

    /// Opens a file (its path as the bytes the file system holds).
    static func open(path: UnsafePointer<CChar>, mode: Mode) -> Result<ArchiveReader, ArchiveMessage> {
        guard let handle = archive_read_new() else {
            return .failure(ArchiveMessage("archive_read_new failed (out of memory)"))
        }
        let reader = ArchiveReader(handle: handle)
        reader.enableFormats(mode)
        if archive_read_open_filename(handle, path, 1 << 16) != ARCHIVE_OK {
            return .failure(ArchiveMessage(reader.errorText()))
        }
        return .success(reader)
    }

    /// Opens an archive whose bytes are the current member of `outer`.
    /// - Parameter prefix: bytes of the member already read (to sniff it), replayed first.
    static func openNested(
        in outer: ArchiveReader, mode: Mode, prefix: [UInt8] = [], onRead: @escaping (Int) -> Bool
    ) -> Result<
        ArchiveReader, ArchiveMessage
    > {
        guard let handle = archive_read_new() else {
            return .failure(ArchiveMessage("archive_read_new failed (out of memory)"))
        }
        let reader = ArchiveReader(handle: handle)
        reader.enableFormats(mode)
        let source = NestedSource(outer: outer.handle, prefix: prefix, onRead: onRead)
        reader.nestedSource = source
        let status = archive_read_open(
            handle, Unmanaged.passUnretained(source).toOpaque(), nil,
            { _, client, buffer in
                guard let client, let buffer else { return -1 }
                let source = Unmanaged<NestedSource>.fromOpaque(client).takeUnretainedValue()
                return source.read(into: buffer)
            }, nil)
        if status != ARCHIVE_OK { return .failure(ArchiveMessage(reader.errorText())) }
        return .success(reader)
    }

    private func enableFormats(_ mode: Mode) {
        archive_read_support_filter_all(handle)
        if mode == .raw {
            archive_read_support_format_raw(handle)
            return
        }
        if mode == .any { archive_read_support_format_raw(handle) }
        // Every real archive format, but not mtree: it bids on ordinary text files.
        archive_read_support_format_tar(handle)
        archive_read_support_format_gnutar(handle)
        archive_read_support_format_zip(handle)
        archive_read_support_format_7zip(handle)
        archive_read_support_format_cpio(handle)
        archive_read_support_format_ar(handle)
        archive_read_support_format_iso9660(handle)
        archive_read_support_format_rar(handle)
        archive_read_support_format_rar5(handle)
        archive_read_support_format_xar(handle)
        archive_read_support_format_lha(handle)
        archive_read_support_format_cab(handle)
        archive_read_support_format_warc(handle)
        archive_read_support_format_empty(handle)
    }

    /// True when the open archive is a single raw stream (a compressed file, not an archive).
    var isRawStream: Bool { archive_format(handle) == ARCHIVE_FORMAT_RAW }

    func nextMember() -> Header {
        var entry: OpaquePointer?
        let status = archive_read_next_header(handle, &entry)
        if status == ARCHIVE_EOF { return .end }
        if status < ARCHIVE_WARN || entry == nil {
            return .damaged(message: errorText(), fatal: status == ARCHIVE_FATAL || entry == nil)
        }
        let name: String
        if let native = archive_entry_pathname(entry) {
            name = PathBytes.display(PathBytes.of(native))
        } else if let utf8 = archive_entry_pathname_utf8(entry) {
            name = String(cString: utf8)
        } else {
            name = "<unnamed>"
        }
        let kind: MemberKind
        if archive_entry_hardlink(entry) != nil {
            kind = .link
        } else {
            switch archive_entry_filetype(entry) {
            // AE_IFREG, AE_IFDIR, AE_IFLNK: C casts in macros, so not imported.
            case 0o100000: kind = .regular
            case 0o040000: kind = .directory
            case 0o120000: kind = .link
            case 0: kind = .regular  // raw streams and some zips leave the type unset
            default: kind = .special
            }
        }
        let size = archive_entry_size_is_set(entry) != 0 ? Int(archive_entry_size(entry)) : nil
        let encrypted = archive_entry_is_encrypted(entry) != 0
        return .member(name: name, kind: kind, declaredSize: size, encrypted: encrypted)
    }

    /// Reads the next piece of the current member's data: > 0 bytes, 0 at its end, or an error.
    func readData(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, ArchiveMessage> {
        let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
        if count < 0 { return .failure(ArchiveMessage(errorText())) }
        return .success(count)
    }

    /// Bytes of the file consumed so far (compressed), for error offsets.
    var compressedOffset: Int { Int(archive_filter_bytes(handle, -1)) }

    /// Bytes the decompression filters have produced so far (all of them, members skipped
    /// included): with `compressedOffset`, the decompression ratio.
    var decompressedOffset: Int { Int(archive_filter_bytes(handle, 0)) }

    /// Whether skipping a member costs nothing: an uncompressed zip read through its central
    /// directory seeks past it. Elsewhere a skip decompresses the member, so ingest reads it
    /// itself, under its limits.
    var skipsBySeeking: Bool {
        archive_format(handle) & ARCHIVE_FORMAT_BASE_MASK == ARCHIVE_FORMAT_ZIP && archive_filter_count(handle) <= 1
    }

    func errorText() -> String {
        guard let text = archive_error_string(handle) else { return "unknown libarchive error" }
        return String(cString: text)
    }
}

/// libarchive's own words for a failure (`archive_error_string`).
struct ArchiveMessage: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

/// Feeds a nested archive from the outer archive's current member.
final class NestedSource {
    let outer: OpaquePointer
    let onRead: (Int) -> Bool
    private var prefix: [UInt8]
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    init(outer: OpaquePointer, prefix: [UInt8], onRead: @escaping (Int) -> Bool) {
        self.outer = outer
        self.prefix = prefix
        self.onRead = onRead
    }

    deinit { buffer.deallocate() }

    func read(into pointer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if !prefix.isEmpty {
            let count = min(prefix.count, buffer.count)
            prefix.withUnsafeBytes {
                UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<count]))
            }
            prefix.removeFirst(count)
            pointer.pointee = UnsafeRawPointer(buffer.baseAddress)
            return count
        }
        let count = archive_read_data(outer, buffer.baseAddress, buffer.count)
        if count < 0 { return -1 }
        // The byte budget is shared with the outer input: over it, the nested stream ends in error.
        if !onRead(count) { return -1 }
        pointer.pointee = UnsafeRawPointer(buffer.baseAddress)
        return count
    }
}
