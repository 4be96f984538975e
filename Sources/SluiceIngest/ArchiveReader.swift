internal import CSluiceArchive

/// Owns one libarchive read handle (`archive_read_new` … `archive_read_free`).
///
/// Members are streamed, never extracted: names are data only, nothing is written to disk.
final class ArchiveReader {
    let handle: OpaquePointer
    /// Kept alive while a nested archive reads through it.
    private var nestedSource: NestedSource?

    /// What `nextMember` found.
    enum Header {
        case member(name: String, kind: MemberKind, declaredSize: Int?)
        case end
        /// The archive is damaged here; `fatal` means nothing more can be read from it.
        case damaged(message: String, fatal: Bool)
    }

    enum MemberKind { case regular, directory, link, special }

    private init(handle: OpaquePointer) { self.handle = handle }

    deinit {
        archive_read_free(handle)
    }

    /// Opens a file. `raw`: the file is one compressed stream (`doc.txt.gz`), read as a single
    /// member with no archive formats enabled — otherwise a stream of zeros would be taken for
    /// an empty tar and its bytes lost.
    static func open(path: String, raw: Bool) -> Result<ArchiveReader, ArchiveMessage> {
        guard let handle = archive_read_new() else {
            return .failure(ArchiveMessage("archive_read_new failed (out of memory)"))
        }
        let reader = ArchiveReader(handle: handle)
        reader.enableFormats(raw: raw)
        if archive_read_open_filename(handle, path, 1 << 16) != ARCHIVE_OK {
            return .failure(ArchiveMessage(reader.errorText()))
        }
        return .success(reader)
    }

    /// Opens an archive whose bytes are the current member of `outer`.
    static func openNested(in outer: ArchiveReader, raw: Bool, onRead: @escaping (Int) -> Bool) -> Result<
        ArchiveReader, ArchiveMessage
    > {
        guard let handle = archive_read_new() else {
            return .failure(ArchiveMessage("archive_read_new failed (out of memory)"))
        }
        let reader = ArchiveReader(handle: handle)
        reader.enableFormats(raw: raw)
        let source = NestedSource(outer: outer.handle, onRead: onRead)
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

    private func enableFormats(raw: Bool) {
        archive_read_support_filter_all(handle)
        if raw {
            archive_read_support_format_raw(handle)
            return
        }
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
        if let utf8 = archive_entry_pathname_utf8(entry) {
            name = String(cString: utf8)
        } else if let native = archive_entry_pathname(entry) {
            name = String(decoding: Array(String(cString: native).utf8), as: UTF8.self)
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
        return .member(name: name, kind: kind, declaredSize: size)
    }

    /// Reads the next piece of the current member's data: > 0 bytes, 0 at its end, or an error.
    func readData(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, ArchiveMessage> {
        let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
        if count < 0 { return .failure(ArchiveMessage(errorText())) }
        return .success(count)
    }

    /// Bytes of the file consumed so far (compressed), for error offsets.
    var compressedOffset: Int { Int(archive_filter_bytes(handle, -1)) }

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
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    init(outer: OpaquePointer, onRead: @escaping (Int) -> Bool) {
        self.outer = outer
        self.onRead = onRead
    }

    deinit { buffer.deallocate() }

    func read(into pointer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        let count = archive_read_data(outer, buffer.baseAddress, buffer.count)
        if count < 0 { return -1 }
        // The byte budget is shared with the outer input: over it, the nested stream ends in error.
        if !onRead(count) { return -1 }
        pointer.pointee = UnsafeRawPointer(buffer.baseAddress)
        return count
    }
}
