import Foundation
import SluiceConfig
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// A document as ingest hands it on: in memory, or — past `IngestReader.streamThresholdBytes`
/// — in an anonymous spool file, so that no document is ever held whole.
public enum IngestedDocument {
    case bytes([UInt8])
    case spooled(SpooledDocument)

    /// The whole text, read back from the spool if need be (for tests and small tools).
    public func wholeBytes() throws -> [UInt8] {
        switch self {
        case .bytes(let bytes): return bytes
        case .spooled(let spool):
            var bytes: [UInt8] = []
            try spool.forEachPiece { bytes.append(contentsOf: $0) }
            return bytes
        }
    }

    public var byteCount: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .spooled(let spool): spool.byteCount
        }
    }
}

/// A document's final text in an unlinked temporary file (gone when this is released).
public final class SpooledDocument {
    let descriptor: Int32
    public private(set) var byteCount = 0
    let path: String

    /// Creates the spool in `directory` and unlinks it at once: nothing is left behind, even
    /// after a crash.
    init(directory: String) throws(IngestError) {
        var template = Array((directory.hasSuffix("/") ? directory : directory + "/").utf8CString.dropLast())
        template += Array("sluice-spool-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { mkstemp($0) } ?? -1
        }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard descriptor >= 0 else {
            throw IngestError(
                .unreadableFile, file: directory,
                "cannot create a spool file for a large document: \(String(cString: strerror(errno)))")
        }
        unlink(path)
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    func append(_ bytes: [UInt8]) throws(IngestError) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes {
                write(descriptor, UnsafeRawBufferPointer(rebasing: $0[done...]).baseAddress, bytes.count - done)
            }
            guard written > 0 else {
                throw IngestError(
                    .unreadableFile, file: path, "cannot write the spool file: \(String(cString: strerror(errno)))")
            }
            done += written
        }
        byteCount += bytes.count
    }

    /// Hands the text on in pieces of at most `pieceBytes`, in order.
    public func forEachPiece(pieceBytes: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pieceBytes, alignment: 16)
        defer { buffer.deallocate() }
        var offset = 0
        while offset < byteCount {
            let count = pread(descriptor, buffer.baseAddress, min(pieceBytes, byteCount - offset), off_t(offset))
            guard count > 0 else {
                throw IngestError(
                    .unreadableFile, file: path, "cannot read the spool file: \(String(cString: strerror(errno)))")
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            offset += count
        }
    }
}

/// Reads inputs into documents per `IngestSettings`, handing each accepted document to a sink.
///
/// One document per plain file, archive member or JSONL record; what a file is comes from its
/// content (ContentSniffer), its name only where the content cannot tell. Bad input never traps:
/// it is recorded in `report` (file, member, line, offset, libarchive's or the OS's words) and
/// skipped, or — with `on_bad_input: "fail"` — thrown as the first `IngestError`. Damage to one
/// member costs that member; an input that could not be read to its end is listed in
/// `report.partialInputs`. Memory is bounded whatever the input: documents over
/// `streamThresholdBytes` are spooled to disk, JSONL records are capped by `max_record_bytes`.
public final class IngestReader {
    /// Documents larger than this are spooled through the text policy instead of held.
    public static let streamThresholdBytes = 8 << 20
    /// The compression-ratio limit applies once an input has produced this much.
    static let ratioCheckBytes = 64 << 20

    public let settings: IngestSettings
    public private(set) var report = IngestReport()
    private let policy: TextPolicy
    private var repairs = TextPolicy.Repairs()
    private let sink: (IngestedDocument) throws -> Void
    private let spoolDirectory: String
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    /// Decompressed bytes read from the current input, against `max_input_bytes`.
    private var inputBudgetUsed = 0

    /// - Parameters:
    ///   - spoolDirectory: where documents over `streamThresholdBytes` are spooled (unlinked
    ///     files); the ingest stage uses the output's work directory.
    ///   - sink: receives each accepted document, in input order.
    public init(
        settings: IngestSettings, spoolDirectory: String = NSTemporaryDirectory(),
        sink: @escaping (IngestedDocument) throws -> Void
    ) {
        self.settings = settings
        self.policy = TextPolicy(settings: settings)
        self.spoolDirectory = spoolDirectory
        self.sink = sink
    }

    deinit { buffer.deallocate() }

    /// Reads one input file completely.
    /// - Throws: the first `IngestError` under `on_bad_input: "fail"`; errors of the sink.
    public func read(_ input: InputFile) throws {
        // A file cut into slices is counted once (by its first slice), its bytes by slice.
        report.inputFiles += (input.byteRange?.lowerBound ?? 0) == 0 ? 1 : 0
        report.inputBytes += input.byteRange?.count ?? input.byteCount
        inputBudgetUsed = 0
        let entriesBefore = report.entries
        if input.hidden && settings.skipHiddenFiles {
            report.entries += 1
            try problem(
                IngestError(
                    .hiddenFile, file: input.name,
                    "hidden (a name starting with \".\"); set ingest.hidden_files to \"read\" to read it"),
                bytes: input.byteCount)
            return
        }
        let kind = InputKind.of(name: input.path)
        if case .compressed(let inner) = kind, !InputKind.of(name: inner).needsLibarchive, input.byteRange == nil,
            let format = DecodedStream.Format.sniff(prefix(of: input, count: 6))
        {
            try readDecoded(input, innerName: inner, format: format)
        } else if kind.needsLibarchive {
            try readWithLibarchive(input, kind: kind, sniffed: false)
        } else if input.byteRange == nil, let container = sniffContainer(input) {
            // Compressed or archive data under a text name: opened as what it is.
            switch container {
            case .compressed: try readWithLibarchive(input, kind: .compressed(innerName: input.name), sniffed: true)
            case .archive: try readWithLibarchive(input, kind: .archive, sniffed: true)
            }
        } else {
            try readPlainFile(input, jsonl: kind == .jsonl)
        }
        syncRepairs()
        // (A slice of a JSONL file may hold no line start at all: not an empty input.)
        if report.entries == entriesBefore && input.byteRange == nil {
            report.entries += 1
            try problem(
                IngestError(.emptyInput, file: input.name, "gave no document (an empty archive or JSONL file?)"),
                bytes: input.byteCount)
        }
    }

    /// The container the file's first bytes announce, if any.
    private func sniffContainer(_ input: InputFile) -> ContentSniffer.Container? {
        let first = prefix(of: input, count: 512)
        guard !first.isEmpty else { return nil }
        return first.withUnsafeBytes { ContentSniffer.container($0) }
    }

    /// The file's first `count` bytes (fewer if it is shorter; none if it cannot be read).
    private func prefix(of input: InputFile, count: Int) -> [UInt8] {
        let descriptor = input.withOpenPath { open($0, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, 0) }
        return Array(bytes.prefix(max(0, read)))
    }

    private func syncRepairs() {
        report.invalidUTF8Replaced = repairs.invalidUTF8Sequences
        report.documentsWithInvalidUTF8 = repairs.documentsWithInvalidUTF8
        report.utf16Decoded = repairs.utf16Decoded
        report.byteOrderMarksStripped = repairs.byteOrderMarksStripped
    }

    // MARK: - Problems

    /// Records a problem; under `on_bad_input: "fail"` a real problem (not a routine skip such
    /// as an empty document or a hidden file) stops the run.
    private func problem(_ error: IngestError, bytes: Int = 0) throws {
        report.record(error, bytes: bytes)
        if Self.losesInput(error.reason) { report.markPartial(error) }
        if settings.onBadInput == .fail && Self.isBadInput(error.reason) { throw error }
    }

    static func isBadInput(_ reason: IngestError.Reason) -> Bool {
        switch reason {
        case .directoryMember, .linkMember, .specialMember, .emptyDocument, .nestedArchive, .emptyInput, .hiddenFile,
            .binary:
            false
        default: true
        }
    }

    /// Whether the reason means part of the input was not read (it is then listed as partial).
    static func losesInput(_ reason: IngestError.Reason) -> Bool {
        switch reason {
        case .corruptArchive, .corruptMember, .crcMismatch, .unreadRemainder, .decompressionLimit, .unreadableFile: true
        default: false
        }
    }

    /// Runs one in-memory document through the text policy and into the sink.
    private func accept(_ raw: [UInt8], file: String, member: String?, line: Int?) throws {
        let replacedBefore = repairs.invalidUTF8Sequences
        switch policy.apply(raw, repairs: &repairs) {
        case .text(let text):
            report.addRepairs(file: file, invalidUTF8: repairs.invalidUTF8Sequences - replacedBefore)
            report.documents += 1
            report.documentBytes += text.count
            try sink(.bytes(text))
        case .rejected(let reason, let message):
            try rejected(
                reason, message, offset: reason == .invalidUTF8 ? UTF8Repair.firstInvalid(raw) : nil,
                file: file, member: member, line: line, bytes: raw.count)
        }
    }

    private func rejected(
        _ reason: IngestError.Reason, _ message: String, offset: Int?, file: String, member: String?, line: Int?,
        bytes: Int
    ) throws {
        var message = message
        // invalid_utf8 "fail" stops the run whatever on_bad_input says.
        let fatal = reason == .invalidUTF8 && settings.invalidUTF8 == .fail
        if fatal { message += "; fix the input or set ingest.invalid_utf8 to \"replace\"" }
        let error = IngestError(reason, file: file, member: member, line: line, offset: offset, message)
        try problem(error, bytes: bytes)
        if fatal { throw error }
    }

    // MARK: - Documents

    /// Reads one document from `chunks`: sniffed, then held in memory or — past
    /// `streamThresholdBytes` — spooled through the streaming text policy.
    /// - Returns: whether `chunks` was read to its end (false: the document was rejected from
    ///   its first bytes — binary, or UTF-16 under "reject" — and the rest left unread).
    private func readDocument(_ chunks: inout ChunkSource, file: String, member: String?, sizeHint: Int?) throws
        -> Bool
    {
        var held: [UInt8] = []
        var ended = false
        func pull() throws -> Bool {
            guard let chunk = try chunks.next() else {
                ended = true
                return false
            }
            held.append(contentsOf: chunk)
            return true
        }
        while held.count < ContentSniffer.sampleBytes, try pull() {}
        if settings.skipBinary {
            let reason = held.withUnsafeBytes {
                ContentSniffer.binaryReason(UnsafeRawBufferPointer(rebasing: $0.prefix(ContentSniffer.sampleBytes)))
            }
            if let reason {
                try problem(
                    IngestError(
                        .binary, file: file, member: member,
                        "\(reason), not text; skipped (set ingest.binary to \"keep\" to read it as text)"),
                    bytes: max(sizeHint ?? 0, held.count))
                return ended
            }
        }
        while !ended && held.count <= Self.streamThresholdBytes, try pull() {}
        if ended && held.count <= settings.maxDocumentBytes {
            try accept(held, file: file, member: member, line: nil)
            return true
        }
        var total = held.count
        func countRestAsOversized() throws {
            while let chunk = try chunks.next() { total += chunk.count }
            try problem(oversized(total, file: file, member: member), bytes: total)
        }
        if total > settings.maxDocumentBytes {
            try countRestAsOversized()
            return true
        }
        // Too large to hold: through the streaming policy into a spool file.
        let spool = try SpooledDocument(directory: spoolDirectory)
        var stream = TextPolicy.Stream(policy: policy)
        try held.withUnsafeBytes { bytes in try stream.feed(bytes) { try spool.append($0) } }
        held = []
        while let chunk = try chunks.next() {
            total += chunk.count
            if total > settings.maxDocumentBytes {
                try countRestAsOversized()
                return true
            }
            try stream.feed(chunk) { try spool.append($0) }
            if let early = stream.rejectedEarly, case .rejected(let reason, let message) = early {
                try rejected(reason, message, offset: nil, file: file, member: member, line: nil, bytes: total)
                return false
            }
        }
        let replacedBefore = repairs.invalidUTF8Sequences
        switch try stream.finish(repairs: &repairs, emit: { try spool.append($0) }) {
        case .text:
            report.addRepairs(file: file, invalidUTF8: repairs.invalidUTF8Sequences - replacedBefore)
            report.documents += 1
            report.documentBytes += spool.byteCount
            try sink(.spooled(spool))
        case .rejected(let reason, let message):
            try rejected(reason, message, offset: nil, file: file, member: member, line: nil, bytes: total)
        }
        return true
    }

    private func oversized(_ bytes: Int, file: String, member: String?) -> IngestError {
        IngestError(
            .oversizedDocument, file: file, member: member,
            "\(bytes) bytes is over ingest.max_document_bytes (\(settings.maxDocumentBytes)); raise it or split the document"
        )
    }

    // MARK: - Plain files and JSONL

    private func readPlainFile(_ input: InputFile, jsonl: Bool) throws {
        let descriptor = input.withOpenPath { open($0, O_RDONLY | O_CLOEXEC) }
        guard descriptor >= 0 else {
            report.entries += 1
            try problem(
                IngestError(.unreadableFile, file: input.name, "cannot open: \(String(cString: strerror(errno)))"),
                bytes: input.byteCount)
            return
        }
        defer { close(descriptor) }
        var slice: (range: Range<Int>, skipFirstLine: Bool)?
        if let range = input.byteRange, jsonl {
            // The line that crosses into this slice belongs to the previous one.
            var before: UInt8 = 0x0A
            if range.lowerBound > 0 && pread(descriptor, &before, 1, off_t(range.lowerBound - 1)) != 1 {
                report.entries += 1
                try problem(
                    IngestError(
                        .unreadableFile, file: input.name, offset: range.lowerBound,
                        "cannot read (file shorter than when it was planned?)"),
                    bytes: range.count)
                return
            }
            guard lseek(descriptor, off_t(range.lowerBound), SEEK_SET) >= 0 else {
                report.entries += 1
                try problem(
                    IngestError(.unreadableFile, file: input.name, "cannot seek: \(String(cString: strerror(errno)))"),
                    bytes: range.count)
                return
            }
            slice = (range, before != 0x0A)
        }
        var chunks = ChunkSource { [buffer] in
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                throw IngestError(.unreadableFile, file: input.name, "read failed: \(String(cString: strerror(errno)))")
            }
            return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        }
        do {
            if jsonl {
                try readJSONL(&chunks, file: input.name, member: nil, slice: slice)
                return
            }
            report.entries += 1
            if input.byteCount > settings.maxDocumentBytes {
                try problem(oversized(input.byteCount, file: input.name, member: nil), bytes: input.byteCount)
                return
            }
            _ = try readDocument(&chunks, file: input.name, member: nil, sizeHint: input.byteCount)
        } catch let error as IngestError where error.reason == .unreadableFile {
            try problem(error, bytes: 0)
        }
    }

    /// One document per line's `text_field`; a line longer than `max_record_bytes` is dropped
    /// as it streams past, never held. A UTF-8 byte order mark before the first line is
    /// stripped. If the stream breaks (a damaged `.jsonl.gz`), every complete line before the
    /// break has been taken, and the error names the line that was cut.
    /// - Parameter slice: for a slice of a large file (read from its start): the lines that
    ///   start inside `range`, skipping a first partial line. Problems then carry the line's
    ///   byte offset in the file instead of a line number (which would need the bytes before).
    private func readJSONL(
        _ chunks: inout ChunkSource, file: String, member: String?,
        slice: (range: Range<Int>, skipFirstLine: Bool)? = nil
    ) throws {
        let lineLimit = settings.maxRecordBytes
        var line: [UInt8] = []
        var lineNumber = 1
        var discarding = false
        var discardedBytes = 0
        // Slices: absolute offset of the next byte, and of the current line's start.
        var position = slice?.range.lowerBound ?? 0
        var lineStart = position
        var skipping = slice?.skipFirstLine ?? false
        var atStart = position == 0
        func location() -> (line: Int?, offset: Int?) { slice == nil ? (lineNumber, nil) : (nil, lineStart) }
        func finishLine() throws {
            defer {
                line.removeAll(keepingCapacity: line.count < 1 << 24)
                lineNumber += 1
            }
            if discarding {
                discarding = false
                report.entries += 1
                try problem(
                    IngestError(
                        .oversizedDocument, file: file, member: member, line: location().line,
                        offset: location().offset,
                        "record of \(discardedBytes) bytes is over ingest.max_record_bytes (\(settings.maxRecordBytes)); raise it or split the record"
                    ),
                    bytes: discardedBytes)
                return
            }
            try handleRecord(line, file: file, member: member, line: location().line, offset: location().offset)
        }
        do {
            while let chunk = try chunks.next() {
                var start = chunk.startIndex
                defer { position += chunk.count }
                if atStart {
                    atStart = false
                    if chunk.count >= 3 && chunk[0] == 0xEF && chunk[1] == 0xBB && chunk[2] == 0xBF {
                        start = 3
                        repairs.byteOrderMarksStripped += 1
                    }
                }
                while start < chunk.endIndex {
                    let newline = Self.firstNewline(in: chunk, from: start)
                    if skipping {
                        // The rest of a line that started in the previous slice.
                        if newline < chunk.endIndex { skipping = false }
                        start = newline + 1
                        lineStart = position + start
                        continue
                    }
                    if let slice, line.isEmpty, !discarding, position + start >= slice.range.upperBound {
                        return  // the next line starts in the next slice
                    }
                    let piece = chunk[start..<newline]
                    if discarding {
                        discardedBytes += piece.count
                    } else if line.count + piece.count > lineLimit {
                        discarding = true
                        discardedBytes = line.count + piece.count
                        line.removeAll()
                    } else {
                        line.append(contentsOf: piece)
                    }
                    if newline < chunk.endIndex {
                        try finishLine()
                        lineStart = position + newline + 1
                    }
                    start = newline + 1
                }
            }
        } catch var error as IngestError
            where error.reason != .oversizedDocument && error.member == member
            && error.file == file && error.line == nil && slice == nil
        {
            // The stream broke inside line `lineNumber`: that line is lost, the ones before kept.
            error.line = lineNumber
            error.message += " (line \(lineNumber) was cut; the \(lineNumber - 1) line(s) before it were read)"
            throw error
        }
        if !line.isEmpty || discarding { try finishLine() }
    }

    /// Index of the next LF in `chunk` at or after `start`, or `chunk.endIndex` (memchr).
    @inline(__always)
    static func firstNewline(in chunk: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = chunk.baseAddress, let hit = memchr(base + start, 0x0A, chunk.count - start) else {
            return chunk.endIndex
        }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    private func handleRecord(_ raw: [UInt8], file: String, member: String?, line: Int?, offset: Int? = nil) throws {
        var bytes = raw[...]
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }  // blank line: JSONL syntax, not data
        report.entries += 1
        func skip(_ reason: IngestError.Reason, _ message: String) throws {
            try problem(
                IngestError(reason, file: file, member: member, line: line, offset: offset, message), bytes: raw.count)
        }
        let node: JSONNode
        let surrogates: Int
        do {
            let parsed = try JSONNode.parseData(bytes, duplicateKeys: .keepLast)
            (node, surrogates) = (parsed.node, parsed.surrogates)
            if parsed.duplicates > 0 { report.duplicateKeysResolved += 1 }
        } catch {
            return try skip(
                .malformedJSONL, "not valid JSON (column \(error.column): \(error.message)); fix or remove the line")
        }
        guard let members = node.members else {
            let article = node.typeName.first.map { "aeiou".contains($0) } == true ? "an" : "a"
            return try skip(.malformedJSONL, "expected a JSON object, got \(article) \(node.typeName)")
        }
        guard let field = node[settings.textField] else {
            let keys = members.prefix(20).map { "\"\($0.key)\"" }.joined(separator: ", ")
            return try skip(
                .missingTextField,
                "no \"\(settings.textField)\" field (ingest.text_field); keys are \(keys.isEmpty ? "none" : keys)")
        }
        guard case .string(let text) = field.value else {
            let article = field.typeName.first.map { "aeiou".contains($0) } == true ? "an" : "a"
            return try skip(
                .missingTextField, "\"\(settings.textField)\" is \(article) \(field.typeName), not a string")
        }
        if text.count > settings.maxDocumentBytes {
            return try skip(
                .oversizedDocument,
                "\(text.count) bytes of text is over ingest.max_document_bytes (\(settings.maxDocumentBytes))")
        }
        report.loneSurrogatesReplaced += surrogates
        report.addRepairs(file: file, surrogates: surrogates)
        try accept(text, file: file, member: member, line: line)
    }

    // MARK: - libarchive

    /// A gzip, xz or zstd file holding one document or JSON Lines, decoded by the format's own
    /// library (`DecodedStream`), so that a cut or damaged file keeps every complete record
    /// decoded before the damage.
    private func readDecoded(_ input: InputFile, innerName: String, format: DecodedStream.Format) throws {
        guard let stream = input.withOpenPath({ DecodedStream(path: $0, format: format) }) else {
            report.entries += 1
            try problem(
                IngestError(.unreadableFile, file: input.name, "cannot open: \(String(cString: strerror(errno)))"),
                bytes: input.byteCount)
            return
        }
        let file = input.name
        let name = (innerName as NSString).lastPathComponent
        var chunks = ChunkSource { [buffer, unowned self] in
            switch stream.read(into: buffer) {
            case .failure(let message):
                throw IngestError(
                    Self.dataFailureReason(message.text), file: file, member: name, offset: stream.compressedOffset,
                    "\(message.text) — re-create or re-download the file")
            case .success(let count):
                try self.charge(
                    count, produced: stream.produced, consumed: stream.compressedOffset, file: file, member: name)
                return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            }
        }
        var counted = false
        do {
            if InputKind.of(name: name) == .jsonl {
                try readJSONL(&chunks, file: file, member: name)
            } else {
                report.entries += 1
                counted = true
                _ = try readDocument(&chunks, file: file, member: name, sizeHint: nil)
            }
        } catch let error as IngestError where Self.isDataFailure(error.reason) {
            // A document is dropped whole (never half a document); JSONL keeps the lines before.
            if !counted { report.entries += 1 }
            try problem(error)
        }
        if let offset = stream.trailingDataOffset {
            report.entries += 1
            try problem(
                IngestError(
                    .unreadRemainder, file: file, offset: offset,
                    "the bytes from here to the end are not \(format) data (after the last complete member) and were not read — re-create or re-download the file"
                ))
        }
    }

    /// How libarchive opens `kind`: a compressed stream found by its content (under a name
    /// that does not say what is inside) may hide a tar as well as a text.
    static func mode(for kind: InputKind, sniffed: Bool) -> ArchiveReader.Mode {
        if case .compressed = kind { return sniffed ? .any : .raw }
        return .archive
    }

    private func readWithLibarchive(_ input: InputFile, kind: InputKind, sniffed: Bool) throws {
        let mode = Self.mode(for: kind, sniffed: sniffed)
        let reader: ArchiveReader
        switch input.withOpenPath({ ArchiveReader.open(path: $0, mode: mode) }) {
        case .success(let opened): reader = opened
        case .failure(let message):
            report.entries += 1
            try problem(
                IngestError(
                    .corruptArchive, file: input.name,
                    "cannot open as an archive: \(message.text) (libarchive); re-create or re-download it"),
                bytes: input.byteCount)
            return
        }
        try readMembers(of: reader, file: input.name, fallbackName: kind, nested: false) {
            guard case .success(let again) = input.withOpenPath({ ArchiveReader.open(path: $0, mode: mode) }) else {
                return nil
            }
            return again
        }
    }

    /// - Parameter reopen: opens the archive again from its start; a zip whose reader gave up
    ///   after a damaged member is reopened and read on from the member after it (its central
    ///   directory gives every entry's offset, so the members before are passed by seeking).
    private func readMembers(
        of first: ArchiveReader, file: String, fallbackName kind: InputKind, nested: Bool,
        reopen: (() -> ArchiveReader?)? = nil
    ) throws {
        var reader = first
        var failures = 0
        var members = 0
        var lastMemberFailed = false
        var resumedAfter = -1
        while true {
            switch reader.nextMember() {
            case .end:
                return
            case .damaged(let message, let fatal):
                if fatal && lastMemberFailed && reader.skipsBySeeking && resumedAfter < members, let reopen,
                    let again = reopen(), Self.pass(members, in: again)
                {
                    // Not an entry of its own: the damaged member was counted.
                    reader = again
                    resumedAfter = members
                    lastMemberFailed = false
                    continue
                }
                report.entries += 1
                failures += 1
                let kept =
                    members == 0
                    ? "no member came before it" : "the \(members) member(s) before it were seen (see the counts)"
                if fatal || failures > 16 {
                    try problem(
                        IngestError(
                            .unreadRemainder, file: file, offset: reader.compressedOffset,
                            "\(message) (libarchive); the rest of the input cannot be read, \(kept) — re-create or re-download it"
                        ))
                    return
                }
                try problem(
                    IngestError(
                        .corruptArchive, file: file, offset: reader.compressedOffset,
                        "damaged entry: \(message) (libarchive); \(kept), reading on"))
            case .member(let rawName, let memberKind, let declaredSize, let encrypted):
                members += 1
                let failuresBefore = report.skippedCount
                var name = rawName
                if reader.isRawStream, case .compressed(let inner) = kind {
                    name = (inner as NSString).lastPathComponent
                }
                let keepGoing = try readMember(
                    of: reader, file: file, name: name, kind: memberKind, declaredSize: declaredSize,
                    encrypted: encrypted, nested: nested)
                lastMemberFailed = report.skippedCount > failuresBefore
                // A raw stream is one member: asking for another would decompress what was left unread.
                if !keepGoing || reader.isRawStream { return }
            }
        }
    }

    /// Moves a freshly opened reader past its first `count` members (headers only).
    static func pass(_ count: Int, in reader: ArchiveReader) -> Bool {
        for _ in 0..<count {
            guard case .member = reader.nextMember() else { return false }
        }
        return true
    }

    /// Reads one member; false when the archive cannot be read further.
    private func readMember(
        of reader: ArchiveReader, file: String, name: String, kind: ArchiveReader.MemberKind, declaredSize: Int?,
        encrypted: Bool, nested: Bool
    ) throws -> Bool {
        switch kind {
        case .directory:
            // Structure, not a document: counted apart from skips.
            report.entries += 1
            report.directories += 1
            return true
        case .link:
            report.entries += 1
            try problem(
                IngestError(.linkMember, file: file, member: name, "symbolic or hard link; links are not followed"))
            return true
        case .special:
            report.entries += 1
            try problem(IngestError(.specialMember, file: file, member: name, "device, FIFO or socket entry"))
            return true
        case .regular:
            break
        }
        if settings.skipHiddenFiles && !reader.isRawStream && InputResolver.isHidden(name) {
            report.entries += 1
            try problem(
                IngestError(
                    .hiddenFile, file: file, member: name,
                    "hidden (a name starting with \".\"); set ingest.hidden_files to \"read\" to read it"),
                bytes: declaredSize ?? 0)
            return try skipRest(of: reader, file: file, name: name)
        }
        if encrypted {
            report.entries += 1
            try problem(
                IngestError(
                    .encrypted, file: file, member: name,
                    "encrypted; Sluice cannot decrypt it — extract it with its password and add the files as inputs"),
                bytes: declaredSize ?? 0)
            return true
        }
        let memberKind = InputKind.of(name: name)
        var memberChunks = memberData(of: reader, file: file, name: name)
        var counted = false
        do {
            if memberKind.needsLibarchive {
                return try readContainerMember(
                    &memberChunks, reader: reader, file: file, name: name, kind: memberKind, prefix: [], nested: nested)
            }
            if memberKind == .jsonl {
                try readJSONL(&memberChunks, file: file, member: name)
                return true
            }
            // Sniff the first bytes: compressed or archive data under a text name is opened as such.
            var first: [UInt8] = []
            if let chunk = try memberChunks.next() { first = Array(chunk) }
            let container = first.withUnsafeBytes { ContentSniffer.container($0) }
            if let container, !reader.isRawStream {
                let innerKind: InputKind =
                    switch container {
                    case .compressed: .compressed(innerName: name)
                    case .archive: .archive
                    }
                return try readContainerMember(
                    &memberChunks, reader: reader, file: file, name: name, kind: innerKind, prefix: first,
                    nested: nested)
            }
            var chunks = ChunkSource(replaying: first, through: buffer, then: memberChunks)
            report.entries += 1
            counted = true
            if let declaredSize, declaredSize > settings.maxDocumentBytes {
                let total = max(try drain(&chunks), declaredSize)
                try problem(oversized(total, file: file, member: name), bytes: total)
                return true
            }
            let complete = try readDocument(&chunks, file: file, member: name, sizeHint: declaredSize)
            if !complete && !reader.isRawStream && !reader.skipsBySeeking {
                // Read past the rest under the limits, so that a bomb stops early.
                _ = try drain(&chunks)
            }
            return true
        } catch let error as IngestError where Self.isDataFailure(error.reason) {
            // The member is dropped whole (never half a document); the archive is read on.
            if !counted { report.entries += 1 }
            try problem(error)
            return error.reason != .decompressionLimit
        }
    }

    static func isDataFailure(_ reason: IngestError.Reason) -> Bool {
        switch reason {
        case .corruptMember, .crcMismatch, .encrypted, .decompressionLimit, .corruptArchive: true
        default: false
        }
    }

    /// What libarchive's message about a member's data means.
    static func dataFailureReason(_ message: String) -> IngestError.Reason {
        let lower = message.lowercased()
        if lower.contains("crc") || lower.contains("checksum") { return .crcMismatch }
        if lower.contains("encrypt") || lower.contains("passphrase") || lower.contains("password") { return .encrypted }
        return .corruptMember
    }

    /// A member that is itself an archive or compressed file.
    private func readContainerMember(
        _ chunks: inout ChunkSource, reader: ArchiveReader, file: String, name: String, kind: InputKind,
        prefix: [UInt8], nested: Bool
    ) throws -> Bool {
        guard settings.readNestedArchives && !nested else {
            report.entries += 1
            let total = prefix.count + (try drain(&chunks))
            try problem(
                IngestError(
                    .nestedArchive, file: file, member: name,
                    nested
                        ? "archive nested more than one level deep; unpack it first"
                        : "nested archive skipped (ingest.nested_archives is \"skip\")"),
                bytes: total)
            return true
        }
        return try readNested(in: reader, file: file, name: name, kind: kind, prefix: prefix)
    }

    /// The current member's data, charged against the input's limits; a failure is the
    /// member's (`dataFailureReason`).
    private func memberData(of reader: ArchiveReader, file: String, name: String) -> ChunkSource {
        ChunkSource { [buffer, unowned self] in
            switch reader.readData(into: buffer) {
            case .failure(let message):
                throw IngestError(
                    Self.dataFailureReason(message.text), file: file, member: name, offset: reader.compressedOffset,
                    "\(message.text) (libarchive); the member is skipped — re-create or re-download the archive")
            case .success(let count):
                try self.charge(count, reader: reader, file: file, member: name)
                return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            }
        }
    }

    /// Skips the rest of the current member: by seeking where that is free, else by reading
    /// it under the limits.
    private func skipRest(of reader: ArchiveReader, file: String, name: String) throws -> Bool {
        if reader.skipsBySeeking || reader.isRawStream { return true }
        var chunks = memberData(of: reader, file: file, name: name)
        do {
            _ = try drain(&chunks)
        } catch let error as IngestError where Self.isDataFailure(error.reason) {
            try problem(error)
            return error.reason != .decompressionLimit
        }
        return true
    }

    /// - Parameter prefix: the member's first bytes, already read to sniff it (it is then a
    ///   container found by content).
    private func readNested(in outer: ArchiveReader, file: String, name: String, kind: InputKind, prefix: [UInt8])
        throws -> Bool
    {
        let mode = Self.mode(for: kind, sniffed: !prefix.isEmpty)
        var overBudget = false
        let opened = ArchiveReader.openNested(in: outer, mode: mode, prefix: prefix) { [unowned self] count in
            inputBudgetUsed += count
            if inputBudgetUsed > settings.maxInputBytes { overBudget = true }
            return !overBudget
        }
        guard case .success(let inner) = opened else {
            if case .failure(let message) = opened {
                report.entries += 1
                try problem(
                    IngestError(
                        .corruptArchive, file: file, member: name,
                        "cannot open the nested archive: \(message.text) (libarchive)"))
            }
            return !overBudget
        }
        let location = "\(file): member \"\(name)\""
        try readMembers(of: inner, file: location, fallbackName: kind, nested: true)
        if overBudget {
            report.entries += 1
            try problem(budgetError(file: file, member: name))
            return false
        }
        return true
    }

    /// Counts decompressed bytes against `max_input_bytes` and `max_compression_ratio`.
    private func charge(_ count: Int, reader: ArchiveReader, file: String, member: String) throws {
        reader.produced += count
        try charge(count, produced: reader.produced, consumed: reader.compressedOffset, file: file, member: member)
    }

    /// - Parameters: produced, consumed: the stream's decompressed and compressed bytes so far.
    private func charge(_ count: Int, produced: Int, consumed: Int, file: String, member: String) throws {
        inputBudgetUsed += count
        if inputBudgetUsed > settings.maxInputBytes { throw budgetError(file: file, member: member) }
        if produced >= Self.ratioCheckBytes {
            let divisor = max(1, consumed)
            if produced / divisor > settings.maxCompressionRatio {
                throw IngestError(
                    .decompressionLimit, file: file, member: member, offset: consumed,
                    "\(produced) bytes decompressed from \(divisor) is over ingest.max_compression_ratio (\(settings.maxCompressionRatio)); stopped reading this input (a decompression bomb?) — raise the limit if the data is genuine"
                )
            }
        }
    }

    private func budgetError(file: String, member: String) -> IngestError {
        IngestError(
            .decompressionLimit, file: file, member: member, offset: inputBudgetUsed,
            "decompressed more than ingest.max_input_bytes (\(settings.maxInputBytes)) from this input; stopped reading it (a decompression bomb?) — raise the limit if the archive is genuine"
        )
    }

    private func drain(_ chunks: inout ChunkSource) throws -> Int {
        var total = 0
        while let chunk = try chunks.next() { total += chunk.count }
        return total
    }
}

/// Pulls a stream in chunks; the chunk is valid until the next call.
struct ChunkSource {
    let pull: () throws -> UnsafeRawBufferPointer
    private var finished = false

    init(_ pull: @escaping () throws -> UnsafeRawBufferPointer) { self.pull = pull }

    /// `first` (bytes already taken from `rest`, to sniff them), then the rest of `rest`.
    init(replaying first: [UInt8], through buffer: UnsafeMutableRawBufferPointer, then rest: ChunkSource) {
        var pending: [UInt8]? = first
        self.init {
            guard let bytes = pending else { return try rest.pull() }
            pending = nil
            let count = bytes.count
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]).copyMemory(from: $0) }
            return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        }
    }

    mutating func next() throws -> UnsafeRawBufferPointer? {
        guard !finished else { return nil }
        let chunk = try pull()
        if chunk.isEmpty {
            finished = true
            return nil
        }
        return chunk
    }
}
