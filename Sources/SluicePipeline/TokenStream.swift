import Foundation
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// The shape of the run's global token stream: the tokens parts in order, the very last
/// separator dropped (DESIGN.md, Windows and batches). Windows are planned from this alone —
/// its length and each document's span — never from the ids, so planning needs no ids in memory.
public struct TokenStream: Sendable {
    /// Ids in the stream.
    public var length: Int
    /// Start and length (separator excluded) of each document.
    public var documents: [(start: Int, length: Int)]

    public init(length: Int, documents: [(start: Int, length: Int)]) {
        self.length = length
        self.documents = documents
    }

    /// Length of the stream the parts make: their tokens, less the separator after the very
    /// last document (separators go between documents).
    public static func length(of parts: [TokenizeStage.Sidecar]) -> Int {
        let total = parts.reduce(0) { $0 + $1.tokens }
        let documents = parts.reduce(0) { $0 + $1.documents }
        return parts.contains { $0.separatorID != nil } && documents > 0 ? total - 1 : total
    }

    /// Decompresses the tokens parts, in order, into one flat file of little-endian ids
    /// (`idBytes` each) that materialize tasks read windows from at random offsets, and
    /// returns the stream's shape. Memory: one LZ4 block plus the document spans.
    public static func writeFlatFile(
        layout: OutputLayout, parts: [TokenizeStage.Sidecar], idBytes: Int, to path: String
    ) throws -> (stream: TokenStream, sha256: String, fileBytes: Int) {
        let length = length(of: parts)
        let writer = try AtomicFileWriter(path: path)
        var hasher = SHA256Hasher()
        var documents: [(start: Int, length: Int)] = []
        var position = 0
        var written = 0
        var converted: [UInt8] = []
        for part in parts {
            let reader = try LZ4FrameReader(path: layout.tokensPart(part.part))
            var partIDs = 0
            var pending: [UInt8] = []
            while let chunk = try reader.nextChunk() {
                // Decompressed pieces need not end on an id boundary: carry the remainder.
                pending.append(contentsOf: chunk)
                let count = pending.count / part.idBytes
                partIDs += count
                // The very last separator of the stream is not written.
                let keep = max(0, min(count, length - written))
                converted.removeAll(keepingCapacity: true)
                if part.idBytes == idBytes {
                    converted.append(contentsOf: pending.prefix(keep * idBytes))
                } else {
                    // A u16 part into a u32 stream.
                    converted.reserveCapacity(keep * 4)
                    for index in 0..<keep {
                        converted.append(pending[2 * index])
                        converted.append(pending[2 * index + 1])
                        converted.append(0)
                        converted.append(0)
                    }
                }
                pending.removeFirst(count * part.idBytes)
                try writer.write(converted)
                hasher.update(converted)
                written += keep
            }
            guard pending.isEmpty else {
                throw PipelineError(
                    .damagedOutput,
                    "\(layout.tokensPart(part.part)): ends inside an id; delete the part and its .json and run again",
                    path: layout.tokensPart(part.part))
            }
            guard partIDs == part.tokens else {
                throw PipelineError(
                    .damagedOutput,
                    "\(layout.tokensPart(part.part)): holds \(partIDs) ids but its sidecar says \(part.tokens); delete the part and its .json and run again",
                    path: layout.tokensPart(part.part))
            }
            let lengths = try LZ4FrameReader(path: layout.tokensDocumentLengths(part.part)).readAll()
            let partStart = position
            for index in stride(from: 0, to: lengths.count - 3, by: 4) {
                let documentLength =
                    Int(lengths[index]) | Int(lengths[index + 1]) << 8 | Int(lengths[index + 2]) << 16
                    | Int(lengths[index + 3]) << 24
                documents.append((position, documentLength))
                position += documentLength + (part.separatorID == nil ? 0 : 1)
            }
            guard position - partStart == part.tokens else {
                throw PipelineError(
                    .damagedOutput,
                    "\(layout.tokensPart(part.part)): document token counts do not add up to the part's \(part.tokens) tokens; delete the part and its .json and run again",
                    path: layout.tokensPart(part.part))
            }
        }
        try writer.commit()
        return (TokenStream(length: length, documents: documents), hasher.finalizeHex(), written * idBytes)
    }
}

/// Where materialize reads window ids from.
public protocol TokenSource {
    /// Ids `start ..< start + count` of the stream, as UInt32, into `ids` (replacing its contents).
    func read(start: Int, count: Int, into ids: inout [UInt32]) throws
}

extension Array: TokenSource where Element == UInt32 {
    public func read(start: Int, count: Int, into ids: inout [UInt32]) throws {
        ids.removeAll(keepingCapacity: true)
        ids.append(contentsOf: self[start..<(start + count)])
    }
}

/// The flat stream file, read with `pread` at window offsets: a materialize task holds one
/// window of ids at a time, whatever the corpus size (the page cache does the rest).
public final class TokenStreamFile: TokenSource {
    public let path: String
    public let idBytes: Int
    public let length: Int
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    public init(path: String, idBytes: Int, length: Int) throws {
        self.path = path
        self.idBytes = idBytes
        self.length = length
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw PipelineError.system("cannot open", path: path)
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0, Int(info.st_size) == length * idBytes else {
            close(descriptor)
            throw PipelineError(
                .damagedOutput,
                "\(path): is not \(length * idBytes) bytes long; the window task's output is damaged — run again to redo it",
                path: path)
        }
    }

    deinit { close(descriptor) }

    public func read(start: Int, count: Int, into ids: inout [UInt32]) throws {
        try readBytes(start: start, count: count, into: &buffer)
        ids.removeAll(keepingCapacity: true)
        if idBytes == 2 {
            for index in 0..<count { ids.append(UInt32(buffer[2 * index]) | UInt32(buffer[2 * index + 1]) << 8) }
        } else {
            for index in 0..<count {
                let base = 4 * index
                ids.append(
                    UInt32(buffer[base]) | UInt32(buffer[base + 1]) << 8 | UInt32(buffer[base + 2]) << 16
                        | UInt32(buffer[base + 3]) << 24)
            }
        }
    }

    /// Ids `start ..< start + count` as they are in the file (little-endian, `idBytes` each);
    /// `bytes` holds exactly those bytes afterwards.
    public func readBytes(start: Int, count: Int, into buffer: inout [UInt8]) throws {
        guard start >= 0, count >= 0, start + count <= length else {
            throw PipelineError(
                .internal, "\(path): ids \(start) ..< \(start + count) are outside the stream of \(length)", path: path)
        }
        let byteCount = count * idBytes
        // Exactly byteCount bytes, reusing the buffer's storage (called per window and per document).
        if buffer.count > byteCount {
            buffer.removeLast(buffer.count - byteCount)
        } else if buffer.count < byteCount {
            buffer.append(contentsOf: repeatElement(0, count: byteCount - buffer.count))
        }
        var done = 0
        try buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            while done < byteCount {
                let got = pread(descriptor, base + done, byteCount - done, off_t((start * idBytes) + done))
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    // A short read is a truncated file: not a passing fault.
                    throw got < 0
                        ? PipelineError.system("read failed at byte \(start * idBytes + done)", path: path)
                        : PipelineError(
                            .damagedOutput, "\(path): ends at byte \(start * idBytes + done); run again to redo it",
                            path: path)
                }
                done += got
            }
        }
    }
}
