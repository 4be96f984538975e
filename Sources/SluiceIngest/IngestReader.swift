import Foundation
import SluiceConfig
import SluiceIO

#if canImport(Glibc)
    import Glibc
#endif

/// Reads inputs into documents per `IngestSettings`, handing each accepted document to a sink.
///
/// One document per plain file, archive member or JSONL record. Bad input never traps: it is
/// recorded in `report` (file, member, line, offset, libarchive's or the OS's words) and
/// skipped, or — with `on_bad_input: "fail"` — thrown as the first `IngestError`.
/// Memory is bounded by `max_document_bytes` plus a 1 MiB read buffer, whatever the input.
public final class IngestReader {
    public let settings: IngestSettings
    public private(set) var report = IngestReport()
    private let policy: TextPolicy
    private var repairs = TextPolicy.Repairs()
    private let sink: ([UInt8]) throws -> Void
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    /// Decompressed bytes read from the current input, against `max_input_bytes`.
    private var inputBudgetUsed = 0

    /// - Parameter sink: receives each accepted document's UTF-8 bytes, in input order.
    public init(settings: IngestSettings, sink: @escaping ([UInt8]) throws -> Void) {
        self.settings = settings
        self.policy = TextPolicy(settings: settings)
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
        let before = (report.documents, report.skippedCount)
        let kind = InputKind.of(name: input.path)
        if kind.needsLibarchive {
            try readWithLibarchive(input, kind: kind)
        } else {
            try readPlainFile(input, jsonl: kind == .jsonl)
        }
        syncRepairs()
        // (A slice of a JSONL file may hold no line start at all: not an empty input.)
        if (report.documents, report.skippedCount) == before && input.byteRange == nil {
            try problem(
                IngestError(.emptyInput, file: input.name, "gave no document (an empty archive or JSONL file?)"),
                bytes: input.byteCount)
        }
    }

    private func syncRepairs() {
        report.invalidUTF8Replaced = repairs.invalidUTF8Sequences
        report.documentsWithInvalidUTF8 = repairs.documentsWithInvalidUTF8
        report.utf16Decoded = repairs.utf16Decoded
        report.byteOrderMarksStripped = repairs.byteOrderMarksStripped
    }

    // MARK: - Problems

    /// Records a problem; under `on_bad_input: "fail"` a real problem (not a routine skip such
    /// as a directory member or an empty document) stops the run.
    private func problem(_ error: IngestError, bytes: Int = 0) throws {
        report.record(error, bytes: bytes)
        if settings.onBadInput == .fail && Self.isBadInput(error.reason) { throw error }
    }

    static func isBadInput(_ reason: IngestError.Reason) -> Bool {
        switch reason {
        case .directoryMember, .linkMember, .specialMember, .emptyDocument, .nestedArchive, .emptyInput: false
        default: true
        }
    }

    /// Runs one document through the text policy and into the sink.
    private func accept(_ raw: [UInt8], file: String, member: String?, line: Int?) throws {
        switch policy.apply(raw, repairs: &repairs) {
        case .text(let text):
            report.documents += 1
            report.documentBytes += text.count
            try sink(text)
        case .rejected(let reason, var message):
            let offset = reason == .invalidUTF8 ? UTF8Repair.firstInvalid(raw) : nil
            // invalid_utf8 "fail" stops the run whatever on_bad_input says.
            let fatal = reason == .invalidUTF8 && settings.invalidUTF8 == .fail
            if fatal { message += "; fix the input or set ingest.invalid_utf8 to \"replace\"" }
            let error = IngestError(reason, file: file, member: member, line: line, offset: offset, message)
            try problem(error, bytes: raw.count)
            if fatal { throw error }
        }
    }

    // MARK: - Plain files and JSONL

    private func readPlainFile(_ input: InputFile, jsonl: Bool) throws {
        let descriptor = open(input.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
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
                try problem(
                    IngestError(
                        .unreadableFile, file: input.name, offset: range.lowerBound,
                        "cannot read (file shorter than when it was planned?)"),
                    bytes: range.count)
                return
            }
            guard lseek(descriptor, off_t(range.lowerBound), SEEK_SET) >= 0 else {
                try problem(
                    IngestError(.unreadableFile, file: input.name, "cannot seek: \(String(cString: strerror(errno)))"),
                    bytes: range.count)
                return
            }
            slice = (range, before != 0x0A)
        }
        if !jsonl && input.byteCount > settings.maxDocumentBytes {
            try problem(
                IngestError(
                    .oversizedDocument, file: input.name,
                    "\(input.byteCount) bytes is over ingest.max_document_bytes (\(settings.maxDocumentBytes)); raise it or split the file"
                ),
                bytes: input.byteCount)
            return
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
            } else {
                let result = try readWhole(&chunks, limit: settings.maxDocumentBytes)
                try finishDocument(result, file: input.name, member: nil)
            }
        } catch let error as IngestError where error.reason == .unreadableFile {
            try problem(error, bytes: 0)
        }
    }

    private enum WholeRead {
        case complete([UInt8])
        case oversized(Int)
    }

    /// Reads a stream into one document, or only counts it once it passes `limit`.
    private func readWhole(_ chunks: inout ChunkSource, limit: Int) throws -> WholeRead {
        var bytes: [UInt8] = []
        var total = 0
        while let chunk = try chunks.next() {
            total += chunk.count
            if total <= limit {
                bytes.append(contentsOf: chunk)
            } else if !bytes.isEmpty {
                bytes = []  // Over the limit: release what was held and keep counting.
            }
        }
        return total <= limit ? .complete(bytes) : .oversized(total)
    }

    private func finishDocument(_ result: WholeRead, file: String, member: String?) throws {
        switch result {
        case .complete(let bytes):
            try accept(bytes, file: file, member: member, line: nil)
        case .oversized(let total):
            try problem(
                IngestError(
                    .oversizedDocument, file: file, member: member,
                    "\(total) bytes is over ingest.max_document_bytes (\(settings.maxDocumentBytes)); raise it or split the document"
                ),
                bytes: total)
        }
    }

    /// One document per line's `text_field`; a line longer than a record could be is dropped
    /// as it streams past, never held.
    /// - Parameter slice: for a slice of a large file (read from its start): the lines that
    ///   start inside `range`, skipping a first partial line. Problems then carry the line's
    ///   byte offset in the file instead of a line number (which would need the bytes before).
    private func readJSONL(
        _ chunks: inout ChunkSource, file: String, member: String?,
        slice: (range: Range<Int>, skipFirstLine: Bool)? = nil
    ) throws {
        let lineLimit = settings.maxDocumentBytes * 6 + 4096  // \uXXXX escapes take 6 bytes per UTF-16 unit
        var line: [UInt8] = []
        var lineNumber = 1
        var discarding = false
        var discardedBytes = 0
        // Slices: absolute offset of the next byte, and of the current line's start.
        var position = slice?.range.lowerBound ?? 0
        var lineStart = position
        var skipping = slice?.skipFirstLine ?? false
        func location() -> (line: Int?, offset: Int?) { slice == nil ? (lineNumber, nil) : (nil, lineStart) }
        func finishLine() throws {
            defer {
                line.removeAll(keepingCapacity: line.count < 1 << 24)
                lineNumber += 1
            }
            if discarding {
                discarding = false
                try problem(
                    IngestError(
                        .oversizedDocument, file: file, member: member, line: location().line,
                        offset: location().offset,
                        "record of \(discardedBytes) bytes is over the limit for ingest.max_document_bytes (\(settings.maxDocumentBytes))"
                    ),
                    bytes: discardedBytes)
                return
            }
            try handleRecord(line, file: file, member: member, line: location().line, offset: location().offset)
        }
        while let chunk = try chunks.next() {
            var start = chunk.startIndex
            defer { position += chunk.count }
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
        func skip(_ reason: IngestError.Reason, _ message: String) throws {
            try problem(
                IngestError(reason, file: file, member: member, line: line, offset: offset, message), bytes: raw.count)
        }
        var bytes = raw[...]
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }  // blank line: JSONL syntax, not data
        let node: JSONNode
        let surrogates: Int
        do {
            (node, surrogates) = try JSONNode.parseCountingRepairs(bytes)
        } catch {
            return try skip(
                .malformedJSONL, "not valid JSON (column \(error.column): \(error.message)); fix or remove the line")
        }
        guard let members = node.members else {
            return try skip(.malformedJSONL, "expected a JSON object, got \(node.typeName)")
        }
        guard let field = node[settings.textField] else {
            let keys = members.map { "\"\($0.key)\"" }.joined(separator: ", ")
            return try skip(
                .missingTextField, "no \"\(settings.textField)\" field (ingest.text_field); keys are \(keys)")
        }
        guard case .string(let text) = field.value else {
            let article = field.typeName == "integer" ? "an" : "a"
            return try skip(
                .missingTextField, "\"\(settings.textField)\" is \(article) \(field.typeName), not a string")
        }
        if text.count > settings.maxDocumentBytes {
            return try skip(
                .oversizedDocument,
                "\(text.count) bytes of text is over ingest.max_document_bytes (\(settings.maxDocumentBytes))")
        }
        report.loneSurrogatesReplaced += surrogates
        try accept(text, file: file, member: member, line: line)
    }

    // MARK: - libarchive

    private func readWithLibarchive(_ input: InputFile, kind: InputKind) throws {
        let raw: Bool
        if case .compressed = kind { raw = true } else { raw = false }
        let reader: ArchiveReader
        switch ArchiveReader.open(path: input.path, raw: raw) {
        case .success(let opened): reader = opened
        case .failure(let message):
            try problem(
                IngestError(
                    .corruptArchive, file: input.name, "cannot open as an archive: \(message.text) (libarchive)"),
                bytes: input.byteCount)
            return
        }
        try readMembers(of: reader, file: input.name, fallbackName: kind, nested: false)
    }

    private func readMembers(of reader: ArchiveReader, file: String, fallbackName kind: InputKind, nested: Bool) throws
    {
        var failures = 0
        while true {
            switch reader.nextMember() {
            case .end:
                return
            case .damaged(let message, let fatal):
                try problem(
                    IngestError(
                        .corruptArchive, file: file, offset: reader.compressedOffset,
                        "\(message) (libarchive); members before this point were kept — re-create or re-download the archive"
                    ))
                failures += 1
                if fatal || failures > 16 { return }
            case .member(let rawName, let memberKind, let declaredSize):
                var name = rawName
                if reader.isRawStream, case .compressed(let inner) = kind {
                    name = (inner as NSString).lastPathComponent
                }
                let keepGoing = try readMember(
                    of: reader, file: file, name: name, kind: memberKind, declaredSize: declaredSize, nested: nested)
                if !keepGoing { return }
            }
        }
    }

    /// Reads one member; false when the archive cannot be read further.
    private func readMember(
        of reader: ArchiveReader, file: String, name: String, kind: ArchiveReader.MemberKind, declaredSize: Int?,
        nested: Bool
    ) throws -> Bool {
        switch kind {
        case .directory:
            // Counted, not listed: directories are routine in archives.
            report.record(IngestError(.directoryMember, file: file, member: name, "directory"), listed: false)
            return true
        case .link:
            try problem(
                IngestError(.linkMember, file: file, member: name, "symbolic or hard link; links are not followed"))
            return true
        case .special:
            try problem(IngestError(.specialMember, file: file, member: name, "device, FIFO or socket entry"))
            return true
        case .regular:
            break
        }
        let memberKind = InputKind.of(name: name)
        var memberChunks = ChunkSource { [buffer, unowned self] in
            switch reader.readData(into: buffer) {
            case .failure(let message):
                throw IngestError(
                    .corruptArchive, file: file, member: name, offset: reader.compressedOffset,
                    "\(message.text) (libarchive); re-create or re-download the archive")
            case .success(let count):
                try self.charge(count, file: file, member: name)
                return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            }
        }
        do {
            if memberKind.needsLibarchive {
                guard settings.readNestedArchives && !nested else {
                    let total = try drain(&memberChunks)
                    try problem(
                        IngestError(
                            .nestedArchive, file: file, member: name,
                            nested
                                ? "archive nested more than one level deep; unpack it first"
                                : "nested archive skipped (ingest.nested_archives is \"skip\")"),
                        bytes: total)
                    return true
                }
                return try readNested(in: reader, file: file, name: name, kind: memberKind)
            }
            if memberKind == .jsonl {
                try readJSONL(&memberChunks, file: file, member: name)
                return true
            }
            if let declaredSize, declaredSize > settings.maxDocumentBytes {
                let total = try drain(&memberChunks)
                try finishDocument(.oversized(max(total, declaredSize)), file: file, member: name)
                return true
            }
            let result = try readWhole(&memberChunks, limit: settings.maxDocumentBytes)
            try finishDocument(result, file: file, member: name)
            return true
        } catch let error as IngestError where error.reason == .corruptArchive || error.reason == .decompressionLimit {
            try problem(error)
            return false
        }
    }

    private func readNested(in outer: ArchiveReader, file: String, name: String, kind: InputKind) throws -> Bool {
        let raw: Bool
        if case .compressed = kind { raw = true } else { raw = false }
        var overBudget = false
        let opened = ArchiveReader.openNested(in: outer, raw: raw) { [unowned self] count in
            inputBudgetUsed += count
            if inputBudgetUsed > settings.maxInputBytes { overBudget = true }
            return !overBudget
        }
        guard case .success(let inner) = opened else {
            if case .failure(let message) = opened {
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
            try problem(budgetError(file: file, member: name))
            return false
        }
        return true
    }

    /// Counts decompressed bytes against `max_input_bytes`.
    private func charge(_ count: Int, file: String, member: String) throws {
        inputBudgetUsed += count
        if inputBudgetUsed > settings.maxInputBytes { throw budgetError(file: file, member: member) }
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
