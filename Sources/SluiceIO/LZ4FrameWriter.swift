internal import CSluiceLZ4
import Dispatch
import Synchronization

// Performance notes (ingest of the 103.6 MB benchmark tar, release): compressing text costs
// about half of ingest time. Turning the frame's content checksum off made no measurable
// difference (0.38-0.45 s either way), so it stays on and `lz4 -t` can check a file alone.
// Acceleration -4 saved ~7% of wall time for a 20% larger file; level 0 stays the default.
// Compressing on a second thread (`Options.compressInBackground`), the ingest of that tar takes
// the time of its slower half instead of the sum: see docs/BENCHMARKS.md for the numbers.

/// Streams bytes into one standard LZ4 frame (readable by `lz4 -d`), written atomically.
///
/// Input is compressed as it arrives through liblz4's frame API (`LZ4F_compressBegin`,
/// `LZ4F_compressUpdate`, `LZ4F_compressEnd`), so a file is never held whole in memory. The
/// SHA-256 of the compressed bytes is computed on the way out, for sidecars and manifests.
public final class LZ4FrameWriter {
    /// Frame settings; see `docs/FORMATS.md` for why these defaults.
    public struct Options: Sendable {
        /// liblz4 acceleration level 0 (fast); higher levels trade speed for ratio.
        public var compressionLevel: Int32 = 0
        /// LZ4 frame block sizes.
        public enum BlockSize: Sendable { case kib64, kib256, mib1, mib4 }
        /// 4 MiB blocks: fewer block headers, and large sequential writes.
        public var blockSize = BlockSize.mib4
        /// The frame's own xxHash32 of the content, checked by `lz4 -d`/`lz4 -t`.
        public var contentChecksum = true
        /// Compress, hash and write on a second thread while the caller produces the next
        /// block: for a producer that does per-byte work of its own (ingest), the two overlap.
        /// Input is copied into one of two block-sized buffers; the file is byte-identical to
        /// the one written without it, since blocks are cut at the same content offsets.
        public var compressInBackground = false

        public init() {}
    }

    public let path: String
    private let sink: FrameSink
    /// Set when `Options.compressInBackground` is: the thread and the two input buffers.
    private let background: BackgroundCompressor?
    private static let chunkSize = 1 << 20
    /// Uncompressed bytes written so far.
    public private(set) var contentByteCount = 0

    public init(path: String, options: Options = Options()) throws(IOError) {
        self.path = path
        var preferences = LZ4F_preferences_t()
        preferences.compressionLevel = options.compressionLevel
        let blockBytes: Int
        switch options.blockSize {
        case .kib64: (preferences.frameInfo.blockSizeID, blockBytes) = (LZ4F_max64KB, 64 << 10)
        case .kib256: (preferences.frameInfo.blockSizeID, blockBytes) = (LZ4F_max256KB, 256 << 10)
        case .mib1: (preferences.frameInfo.blockSizeID, blockBytes) = (LZ4F_max1MB, 1 << 20)
        case .mib4: (preferences.frameInfo.blockSizeID, blockBytes) = (LZ4F_max4MB, 4 << 20)
        }
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentChecksumFlag =
            options.contentChecksum ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum
        // The background thread hands liblz4 whole blocks, the caller's thread 1 MiB chunks.
        let updateBytes = options.compressInBackground ? blockBytes : Self.chunkSize
        sink = try FrameSink(path: path, preferences: preferences, updateBytes: updateBytes)
        background = options.compressInBackground ? BackgroundCompressor(sink: sink, blockBytes: blockBytes) : nil
    }

    deinit {
        background?.close()
    }

    /// Compresses and appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        guard let base = bytes.baseAddress else { return }
        if let background {
            try background.append(base, count: bytes.count)
            contentByteCount += bytes.count
            return
        }
        var offset = 0
        while offset < bytes.count {
            let length = min(Self.chunkSize, bytes.count - offset)
            try sink.compress(base + offset, count: length)
            offset += length
            contentByteCount += length
        }
    }

    public func write(_ bytes: [UInt8]) throws(IOError) {
        var failure: IOError?
        bytes.withUnsafeBytes { buffer in
            do throws(IOError) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Ends the frame, makes the file durable under its final name and returns its SHA-256
    /// and size.
    public func finish() throws(IOError) -> (sha256: String, byteCount: Int) {
        try background?.drain()
        return try sink.finish()
    }
}

/// Where compressed bytes go: liblz4's frame context, the SHA-256 of the output, the file.
/// Used by one thread at a time — the writer's, or its background queue while a block is there.
private final class FrameSink: @unchecked Sendable {
    let path: String
    private let file: AtomicFileWriter
    private var context: OpaquePointer?
    private var preferences: LZ4F_preferences_t
    private var output: [UInt8]
    private var hasher = SHA256Hasher()

    init(path: String, preferences: LZ4F_preferences_t, updateBytes: Int) throws(IOError) {
        self.path = path
        self.preferences = preferences
        file = try AtomicFileWriter(path: path)
        var ctx: OpaquePointer?
        let created = LZ4F_createCompressionContext(&ctx, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let ctx else {
            throw IOError(
                .compression, path: path, "LZ4F_createCompressionContext: \(LZ4FrameWriter.errorName(created))")
        }
        context = ctx
        output = [UInt8](repeating: 0, count: LZ4F_compressBound(updateBytes, &self.preferences) + 64)
        let headerSize = output.withUnsafeMutableBytes { buffer in
            LZ4F_compressBegin(ctx, buffer.baseAddress, buffer.count, &self.preferences)
        }
        try check(headerSize, "LZ4F_compressBegin")
        try emit(headerSize)
    }

    deinit {
        if let context { LZ4F_freeCompressionContext(context) }
    }

    /// Compresses `count` bytes (at most the `updateBytes` given to init) and writes the output.
    func compress(_ base: UnsafeRawPointer, count: Int) throws(IOError) {
        guard let context else { return }
        let produced = output.withUnsafeMutableBytes { buffer in
            LZ4F_compressUpdate(context, buffer.baseAddress, buffer.count, base, count, nil)
        }
        try check(produced, "LZ4F_compressUpdate")
        try emit(produced)
    }

    func finish() throws(IOError) -> (sha256: String, byteCount: Int) {
        guard let context else { return (hasher.finalizeHex(), file.byteCount) }
        let produced = output.withUnsafeMutableBytes { buffer in
            LZ4F_compressEnd(context, buffer.baseAddress, buffer.count, nil)
        }
        try check(produced, "LZ4F_compressEnd")
        try emit(produced)
        LZ4F_freeCompressionContext(context)
        self.context = nil
        try file.commit()
        return (hasher.finalizeHex(), file.byteCount)
    }

    private func emit(_ count: Int) throws(IOError) {
        guard count > 0 else { return }
        var failure: IOError?
        output.withUnsafeBytes { buffer in
            let slice = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            hasher.update(slice)
            do throws(IOError) { try file.write(slice) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    private func check(_ code: Int, _ function: String) throws(IOError) {
        if LZ4F_isError(code) != 0 {
            throw IOError(.compression, path: path, "\(function): \(LZ4FrameWriter.errorName(code))")
        }
    }
}

/// Two block-sized input buffers and a serial queue: the writer's thread fills one while the
/// queue compresses the other, so at most one block is in flight and memory stays 2 blocks.
///
/// Protocol: the writer fills `buffers[filling]`; when it is full it is queued and the writer
/// waits on `free` before filling the other one. `free` starts at 1 and each finished job signals
/// it once; jobs finish in order, so a passed wait means the buffer about to be filled is no
/// longer read. The first error is kept in `failure` (a job after it does nothing) and thrown by
/// the writer's next hand-off or `drain()`.
private final class BackgroundCompressor: @unchecked Sendable {
    private let sink: FrameSink
    private let blockBytes: Int
    private let buffers: [UnsafeMutableRawPointer]
    private let queue = DispatchQueue(label: "sluice.lz4.compress")
    private let free = DispatchSemaphore(value: 1)
    private let failure = Mutex<IOError?>(nil)
    /// Writer's thread only.
    private var filling = 0
    private var filled = 0

    init(sink: FrameSink, blockBytes: Int) {
        self.sink = sink
        self.blockBytes = blockBytes
        buffers = (0..<2).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: blockBytes, alignment: 64)
        }
    }

    /// Waits for the queued jobs and frees the buffers; the writer's deinit calls it (not this
    /// deinit, which may run on the queue itself when a job drops the last reference).
    func close() {
        queue.sync {}
        for buffer in buffers { buffer.deallocate() }
    }

    func append(_ base: UnsafeRawPointer, count: Int) throws(IOError) {
        var offset = 0
        while offset < count {
            let length = min(blockBytes - filled, count - offset)
            (buffers[filling] + filled).copyMemory(from: base + offset, byteCount: length)
            filled += length
            offset += length
            if filled == blockBytes { try handOff() }
        }
    }

    /// Queues every filled byte and waits until all of it is written.
    func drain() throws(IOError) {
        if filled > 0 { submit() }
        queue.sync {}
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func handOff() throws(IOError) {
        submit()
        free.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func submit() {
        let index = filling
        let count = filled
        queue.async { [self] in
            defer { free.signal() }
            guard failure.withLock({ $0 == nil }) else { return }
            do throws(IOError) {
                try sink.compress(buffers[index], count: count)
            } catch {
                failure.withLock { $0 = error }
            }
        }
        filling ^= 1
        filled = 0
    }
}

extension LZ4FrameWriter {
    static func errorName(_ code: Int) -> String {
        String(cString: LZ4F_getErrorName(code))
    }
}
