internal import CSluiceLZMA
internal import CSluiceZlib
internal import CSluiceZstd
import Glibc

/// A compressed file decoded by its format's own library — zlib, liblzma, libzstd — one or
/// more members (gzip members, xz streams, zstd frames) one after another, as `gzip -dc`,
/// `xz -dc` and `zstd -dc` read them.
///
/// libarchive's filters fill a 64 KiB output block before handing anything on and drop that
/// block when the input ends early or turns bad, so a cut `.jsonl.gz` lost up to 64 KiB of
/// complete records before the cut. These libraries hand on every byte they can decode:
/// everything up to the damage reaches the reader, and then the failure.
final class DecodedStream {
    enum Format: String, CaseIterable {
        case gzip, xz, zstd

        /// The bytes every member of the format starts with.
        var magic: [UInt8] {
            switch self {
            case .gzip: [0x1F, 0x8B]
            case .xz: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]
            case .zstd: [0x28, 0xB5, 0x2F, 0xFD]
            }
        }

        /// The format the first bytes announce, if it is one of these.
        static func sniff(_ prefix: [UInt8]) -> Format? {
            allCases.first { prefix.starts(with: $0.magic) }
        }

        /// Whether `next` (at least one byte) can start another member of this format.
        func startsMember(_ next: UnsafeRawBufferPointer) -> Bool {
            // A zstd skippable frame (0x184D2A50…5F, little-endian) is a member too.
            if self == .zstd && next.count >= 4 && next[0] & 0xF0 == 0x50 && next[1] == 0x2A && next[2] == 0x4D
                && next[3] == 0x18
            {
                return true
            }
            return zip(magic, next).allSatisfy { $0 == $1 }
        }
    }

    let format: Format
    private let codec: any StreamCodec
    private let descriptor: Int32
    private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    private var inputStart = 0
    private var inputEnd = 0
    /// Bytes read from the file so far.
    private var fileBytesRead = 0
    private var endOfFile = false
    /// A failure found while output was still to be handed on: reported by the next call.
    private var pendingFailure: ArchiveMessage?
    private var finished = false
    /// Decompressed bytes handed out (kept by the caller, for the ratio limit).
    private(set) var produced = 0
    /// Where bytes that are neither another member nor zero padding start, after the last
    /// member: the stream ends there, and the caller counts the rest as unread.
    private(set) var trailingDataOffset: Int?

    /// Compressed bytes consumed so far, for error offsets and the ratio limit.
    var compressedOffset: Int { fileBytesRead - (inputEnd - inputStart) }

    /// Opens `path` (the bytes the file system holds); nil when it cannot be opened or the
    /// decoder cannot start (the caller reports it with `errno`).
    init?(path: UnsafePointer<CChar>, format: Format) {
        let codec: (any StreamCodec)? =
            switch format {
            case .gzip: ZlibCodec()
            case .xz: LZMACodec()
            case .zstd: ZstdCodec()
            }
        guard let codec else {
            input.deallocate()
            return nil
        }
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            input.deallocate()
            return nil
        }
        self.codec = codec
        self.format = format
    }

    deinit {
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
        guard !finished, !buffer.isEmpty else { return .success(0) }
        var written = 0
        while written == 0 {
            if inputStart == inputEnd && !endOfFile {
                if case .failure(let failure) = refill() { return .failure(failure) }
            }
            // Empty only at the end of the file: then the decoder is given nothing, to flush
            // what it holds back for want of output space.
            let available = UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd])
            if codec.atBoundary {
                if available.isEmpty {
                    finished = true
                    return .success(0)
                }
                if !format.startsMember(available) {
                    // Zero padding (tape blocks, xz stream padding) ends the stream; other
                    // bytes end it too, and are reported as unread.
                    finished = true
                    let offset = compressedOffset
                    switch restIsZeros() {
                    case .failure(let failure): return .failure(failure)
                    case .success(let zeros): if !zeros { trailingDataOffset = offset }
                    }
                    return .success(0)
                }
            }
            let step = codec.decode(available, buffer)
            inputStart += step.consumed
            written = step.produced
            var failure = step.failure.map(ArchiveMessage.init)
            if available.isEmpty && written == 0 && !codec.atBoundary {
                failure = failure ?? ArchiveMessage("unexpected end of file: the \(format) stream is truncated")
            }
            if let failure {
                // Every byte decoded before the failure is handed on first.
                guard written == 0 else {
                    pendingFailure = failure
                    break
                }
                finished = true
                return .failure(failure)
            }
        }
        produced += written
        return .success(written)
    }

    /// Whether the unconsumed input and the rest of the file are all zero bytes.
    private func restIsZeros() -> Result<Bool, ArchiveMessage> {
        while true {
            if input[inputStart..<inputEnd].contains(where: { $0 != 0 }) { return .success(false) }
            inputStart = inputEnd
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
            (inputStart, inputEnd) = (0, count)
            return .success(())
        }
    }
}

/// One decoder library's streaming call.
protocol StreamCodec: AnyObject {
    /// Between members, with nothing half decoded: where the input may end cleanly.
    var atBoundary: Bool { get }
    /// Decodes from `input` into `output` (not empty; `input` is empty at the end of the file,
    /// to flush what the decoder holds): the bytes consumed and produced, and the library's
    /// words when the data is bad.
    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> (
        consumed: Int, produced: Int, failure: String?
    )
}

/// gzip through zlib: one member per inflate run, reset for the next.
final class ZlibCodec: StreamCodec {
    private var stream = z_stream()
    private(set) var atBoundary = true

    init?() {
        guard csluice_inflate_init_gzip(&stream) == Z_OK else { return nil }
    }

    deinit { inflateEnd(&stream) }

    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> (
        consumed: Int, produced: Int, failure: String?
    ) {
        atBoundary = false
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = UInt32(clamping: input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = UInt32(clamping: output.count)
        let status = inflate(&stream, Z_NO_FLUSH)
        let consumed = min(input.count, Int(UInt32.max)) - Int(stream.avail_in)
        let produced = min(output.count, Int(UInt32.max)) - Int(stream.avail_out)
        switch status {
        case Z_STREAM_END:
            atBoundary = true
            inflateReset(&stream)
            return (consumed, produced, nil)
        case Z_OK, Z_BUF_ERROR:
            return (consumed, produced, nil)
        default:
            let text = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
            let message =
                text == "incorrect data check" ? "CRC mismatch (incorrect data check)" : "invalid gzip data: \(text)"
            return (consumed, produced, message + " (zlib)")
        }
    }
}

/// xz through liblzma: one .xz stream per decoder, started again for the next.
final class LZMACodec: StreamCodec {
    private var stream = lzma_stream()
    private var started = false
    private(set) var atBoundary = true
    /// xz -9 needs 65 MiB to decode; a header asking for more than this is refused.
    static let memoryLimit: UInt64 = 1 << 28

    init?() {}

    deinit { lzma_end(&stream) }

    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> (
        consumed: Int, produced: Int, failure: String?
    ) {
        if !started {
            guard lzma_stream_decoder(&stream, Self.memoryLimit, 0) == LZMA_OK else {
                return (0, 0, "cannot start the xz decoder (out of memory) (liblzma)")
            }
            started = true
        }
        atBoundary = false
        stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_in = input.count
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        stream.avail_out = output.count
        let status = lzma_code(&stream, LZMA_RUN)
        let consumed = input.count - stream.avail_in
        let produced = output.count - stream.avail_out
        switch status {
        case LZMA_STREAM_END:
            atBoundary = true
            started = false
            return (consumed, produced, nil)
        case LZMA_OK, LZMA_BUF_ERROR:
            return (consumed, produced, nil)
        case LZMA_MEMLIMIT_ERROR:
            return (
                consumed, produced,
                "the xz stream needs more than \(Self.memoryLimit >> 20) MiB of memory to decode (liblzma)"
            )
        case LZMA_DATA_ERROR:
            return (consumed, produced, "invalid xz data: the compressed data or its check is corrupt (liblzma)")
        case LZMA_FORMAT_ERROR, LZMA_OPTIONS_ERROR:
            return (consumed, produced, "not a valid xz stream header (liblzma)")
        default:
            return (consumed, produced, "xz decoder error \(status.rawValue) (liblzma)")
        }
    }
}

/// zstd through libzstd: frames one after another in one context (it starts each new frame).
final class ZstdCodec: StreamCodec {
    private let context: OpaquePointer
    private(set) var atBoundary = true

    init?() {
        guard let context = ZSTD_createDCtx() else { return nil }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    func decode(_ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer) -> (
        consumed: Int, produced: Int, failure: String?
    ) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let hint = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
        if ZSTD_isError(hint) != 0 {
            let text = String(cString: ZSTD_getErrorName(hint))
            let message =
                text.lowercased().contains("checksum") ? "checksum mismatch: \(text)" : "invalid zstd data: \(text)"
            return (inBuffer.pos, outBuffer.pos, message + " (libzstd)")
        }
        // 0: a frame was completely decoded and flushed.
        atBoundary = hint == 0
        return (inBuffer.pos, outBuffer.pos, nil)
    }
}
