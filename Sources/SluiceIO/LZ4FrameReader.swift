internal import CSluiceLZ4
import Foundation

/// Reads the content of an LZ4 frame file (or several concatenated frames) in chunks.
///
/// Damage is reported, never trapped on: a corrupt block or checksum gives liblz4's error name
/// and the compressed byte offset; a file that ends inside a frame is `truncated`.
public final class LZ4FrameReader {
    public let path: String
    private let handle: FileHandle
    private var context: OpaquePointer?
    private var input: [UInt8] = []
    private var inputStart = 0
    private var compressedOffset = 0
    private var atEndOfFile = false
    private var frameComplete = true
    private var output = [UInt8](repeating: 0, count: 1 << 20)
    private var hasher = SHA256Hasher()

    public init(path: String) throws(IOError) {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw IOError(.cannotOpen, path: path, "cannot open: \(AtomicFileWriter.osError())")
        }
        self.handle = handle
        var ctx: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&ctx, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let ctx else {
            throw IOError(
                .decompression, path: path, "LZ4F_createDecompressionContext: \(LZ4FrameWriter.errorName(created))")
        }
        context = ctx
    }

    deinit {
        if let context { LZ4F_freeDecompressionContext(context) }
        try? handle.close()
    }

    /// SHA-256 of the compressed bytes consumed so far; complete once `nextChunk` returned nil.
    public var compressedSHA256: String { hasher.finalizeHex() }

    /// The next piece of decompressed content, or nil at the end of the file.
    public func nextChunk() throws(IOError) -> ArraySlice<UInt8>? {
        guard let context else { return nil }
        while true {
            if inputStart == input.count {
                if atEndOfFile {
                    if !frameComplete {
                        throw IOError(
                            .truncated, path: path, offset: compressedOffset,
                            "the LZ4 frame ends early (file truncated?); re-create this file")
                    }
                    return nil
                }
                try refill()
                continue
            }
            var produced = output.count
            var consumed = input.count - inputStart
            let hint = input.withUnsafeBytes { source in
                output.withUnsafeMutableBytes { destination in
                    LZ4F_decompress(
                        context, destination.baseAddress, &produced, source.baseAddress.map { $0 + inputStart },
                        &consumed, nil)
                }
            }
            if LZ4F_isError(hint) != 0 {
                throw IOError(
                    .decompression, path: path, offset: compressedOffset,
                    "corrupt LZ4 data (\(LZ4FrameWriter.errorName(hint))); re-create this file")
            }
            inputStart += consumed
            compressedOffset += consumed
            frameComplete = hint == 0
            if produced > 0 { return output[0..<produced] }
        }
    }

    /// Reads everything that is left (for small files and tests).
    public func readAll() throws(IOError) -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try nextChunk() { all.append(contentsOf: chunk) }
        return all
    }

    private func refill() throws(IOError) {
        let data: Data
        do {
            data = try handle.read(upToCount: 1 << 20) ?? Data()
        } catch {
            throw IOError(
                .cannotRead, path: path, offset: compressedOffset, "read failed: \(error.localizedDescription)")
        }
        if data.isEmpty {
            atEndOfFile = true
            return
        }
        input = [UInt8](data)
        inputStart = 0
        hasher.update(input)
    }
}
