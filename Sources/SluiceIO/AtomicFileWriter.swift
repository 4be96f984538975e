import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes a file so that it appears under its final name only when complete.
///
/// Bytes go to a hidden temporary file in the same directory; `commit()` fsyncs it, renames it
/// over the final name and fsyncs the directory, so after a crash a reader sees either the
/// whole old file, the whole new one, or nothing — never a prefix. Dropped without `commit()`,
/// the temporary file is removed.
public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String
    private var descriptor: Int32
    /// Bytes written so far.
    public private(set) var byteCount: Int = 0

    /// - Throws: `IOError.cannotOpen` with the OS error (missing directory, permissions, …).
    public init(path: String) throws(IOError) {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw IOError(.cannotOpen, path: path, "cannot create \(temporaryPath): \(Self.osError())")
        }
    }

    deinit {
        if descriptor >= 0 {
            close(descriptor)
            unlink(temporaryPath)
        }
    }

    /// Appends `bytes`.
    /// - Throws: `IOError.cannotWrite` (a full disk says so: ENOSPC).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        guard var base = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = Glibc.write(descriptor, base, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw IOError(.cannotWrite, path: path, offset: byteCount, "write failed: \(Self.osError())")
            }
            remaining -= written
            byteCount += written
            base += written
        }
    }

    public func write(_ bytes: [UInt8]) throws(IOError) {
        var failure: IOError?
        bytes.withUnsafeBytes { buffer in
            do throws(IOError) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Makes the file durable and visible under its final name.
    public func commit() throws(IOError) {
        guard descriptor >= 0 else { return }
        if fsync(descriptor) != 0 {
            throw IOError(.cannotWrite, path: path, "fsync failed: \(Self.osError())")
        }
        close(descriptor)
        descriptor = -1
        if rename(temporaryPath, path) != 0 {
            let reason = Self.osError()
            unlink(temporaryPath)
            throw IOError(.cannotRename, path: path, "cannot rename \(temporaryPath) into place: \(reason)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Writes `bytes` to `path` atomically in one call.
    public static func write(_ bytes: [UInt8], to path: String) throws(IOError) {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }

    /// Removes temporary files that writers killed mid-write left in `directory` (names
    /// `.NAME.tmp-PID` whose process no longer exists on this host). Returns how many.
    /// Only for a coordinator that owns the directory: on a shared filesystem, another host's
    /// live writer would look dead from here.
    @discardableResult
    public static func removeStaleTemporaryFiles(in directory: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(".") {
            guard let marker = name.range(of: ".tmp-", options: .backwards),
                let pid = Int32(name[marker.upperBound...]), pid != getpid()
            else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }  // still running (or not ours to judge)
            if unlink(directory + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }

    static func osError() -> String {
        String(cString: strerror(errno))
    }
}
