import Foundation

/// Reads a whole small file (a config, a log's new tail) with the OS's reason on failure, one
/// line from strerror, rather than Foundation's multi-line error text.
public enum FileBytes {
    /// The bytes of `path` from `offset` to its end.
    public static func read(_ path: String, from offset: Int = 0) throws(IOError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw IOError(.cannotOpen, path: path, String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let position = offset + bytes.count
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(position)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw IOError(.cannotRead, path: path, offset: position, String(cString: strerror(errno)))
            }
            if count == 0 { return bytes }
            bytes += buffer[..<count]
        }
    }
}
