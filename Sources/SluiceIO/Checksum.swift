import Crypto
import Foundation

/// SHA-256, the integrity hash of every file Sluice writes (sidecars, manifest, report).
public struct SHA256Hasher {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    public mutating func update(_ bytes: [UInt8]) {
        hasher.update(data: bytes)
    }

    /// Lowercase hex of the digest.
    public func finalizeHex() -> String {
        hasher.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Lowercase hex SHA-256 of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        var hasher = SHA256Hasher()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// Lowercase hex SHA-256 of a file's bytes, read in 1 MiB chunks.
    public static func hex(ofFile path: String) throws(IOError) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw IOError(.cannotOpen, path: path, "cannot open: \(AtomicFileWriter.osError())")
        }
        defer { try? handle.close() }
        var hasher = SHA256Hasher()
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw IOError(.cannotRead, path: path, "read failed: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalizeHex()
    }
}
