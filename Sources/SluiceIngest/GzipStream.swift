internal import CSluiceZlib
import Glibc

/// Inflates a gzip file — one or more members, as `gzip -dc` reads them — with zlib itself.
///
/// libarchive's gzip filter fills a 64 KiB output block before handing anything on and drops
/// that block when the input ends early or turns bad, so a cut `.jsonl.gz` lost up to 64 KiB
/// of complete records before the cut. zlib hands on every byte it can decode: everything up
/// to the damage reaches the reader, and then the failure.
final class GzipStream {
    private var stream = z_stream()
    private let descriptor: Int32
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    /// Bytes read from the file so far.
    private var fileBytesRead = 0
    private var endOfFile = false
    /// Inside a member (its header seen, its trailer not yet).
    private var inMember = false
    /// A failure found while output was still to be handed on: reported by the next call.
    private var pendingFailure: ArchiveMessage?
    private var finished = false
    /// Decompressed bytes handed out (kept by the caller, for the ratio limit).
    var produced = 0
    /// Where bytes that are neither another member nor zero padding start, after the last
    /// member: the stream ends there, and the caller counts the rest as unread.
    private(set) var trailingDataOffset: Int?

    /// Compressed bytes consumed so far, for error offsets and the ratio limit.
    var compressedOffset: Int { fileBytesRead - Int(stream.avail_in) }

    /// Opens `path` (the bytes the file system holds); nil when it cannot be opened or zlib
    /// cannot start (the caller reports it as an open failure).
    init?(path: UnsafePointer<CChar>) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            input.deallocate()
            return nil
        }
        guard csluice_inflate_init_gzip(&stream) == Z_OK else {
            close(descriptor)
            input.deallocate()
            return nil
        }
    }

    deinit {
        inflateEnd(&stream)
        close(descriptor)
        input.deallocate()
    }

    /// The next decompressed bytes into `buffer`: > 0 bytes, 0 at the end of the last member,
    /// or the failure (after every byte decoded before it has been handed on).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, ArchiveMessage> {
        if let failure = pendingFailure {
            pendingFailure = nil
            finished = true
            return .failure(failure)
        }
        guard !finished, let out = buffer.baseAddress, !buffer.isEmpty else { return .success(0) }
        stream.next_out = out.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(min(buffer.count, Int(UInt32.max)))
        let capacity = Int(stream.avail_out)
        func written() -> Int { capacity - Int(stream.avail_out) }
        while written() == 0 {
            if stream.avail_in == 0 && !endOfFile {
                switch refill() {
                case .failure(let failure): return .failure(failure)
                case .success: break
                }
            }
            if stream.avail_in == 0 && endOfFile {
                finished = true
                if inMember {
                    return .failure(ArchiveMessage("unexpected end of file: the gzip stream is truncated"))
                }
                return .success(0)
            }
            if !inMember {
                // Between members: another one starts with gzip's magic. Zero padding (tape
                // blocks) ends the stream; other bytes end it too, and are reported as unread.
                guard let next = stream.next_in, next[0] == 0x1F, stream.avail_in < 2 || next[1] == 0x8B else {
                    finished = true
                    let offset = compressedOffset
                    switch restIsZeros() {
                    case .failure(let failure): return .failure(failure)
                    case .success(let zeros): if !zeros { trailingDataOffset = offset }
                    }
                    return .success(0)
                }
                inMember = true
            }
            let status = inflate(&stream, Z_NO_FLUSH)
            switch status {
            case Z_STREAM_END:
                inMember = false
                inflateReset(&stream)
            case Z_OK, Z_BUF_ERROR:
                break
            default:
                let text = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                let failure = ArchiveMessage(
                    text == "incorrect data check"
                        ? "CRC mismatch (incorrect data check)" : "invalid gzip data: \(text)")
                if written() > 0 {
                    pendingFailure = failure
                    break
                }
                finished = true
                return .failure(failure)
            }
            if pendingFailure != nil { break }
        }
        produced += written()
        return .success(written())
    }

    /// Whether the unconsumed input and the rest of the file are all zero bytes.
    private func restIsZeros() -> Result<Bool, ArchiveMessage> {
        while true {
            if let next = stream.next_in, stream.avail_in > 0 {
                if UnsafeBufferPointer(start: next, count: Int(stream.avail_in)).contains(where: { $0 != 0 }) {
                    return .success(false)
                }
                stream.avail_in = 0
            }
            if endOfFile { return .success(true) }
            if case .failure(let failure) = refill() { return .failure(failure) }
        }
    }

    private func refill() -> Result<Void, ArchiveMessage> {
        while true {
            let count = Glibc.read(descriptor, input.baseAddress, input.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return .failure(ArchiveMessage("cannot read: \(String(cString: strerror(errno)))")) }
            if count == 0 { endOfFile = true }
            fileBytesRead += count
            stream.next_in = input.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = UInt32(count)
            return .success(())
        }
    }
}
