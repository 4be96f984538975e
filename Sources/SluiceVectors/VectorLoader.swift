import Foundation
import SluiceIO

/// The file formats gensim's `load_word2vec_format` reads, plus safetensors with a vocab file.
public enum VectorFormat: String, Sendable, CaseIterable {
    /// word2vec.c / GoogleNews binary: `count dim\n`, then `word ` + dim little-endian float32.
    case word2vecBinary = "word2vec-binary"
    /// word2vec text (and fastText `.vec`): the same header, then `word v1 … vdim` lines.
    case word2vecText = "word2vec-text"
    /// GloVe text: word2vec text without the header.
    case glove
    /// A safetensors file with one F32 tensor `vectors` [count, dim], keys in `NAME.vocab.txt`.
    case safetensors
}

/// How invalid UTF-8 in a key is handled (gensim's `unicode_errors`).
public enum UnicodeErrors: String, Sendable, CaseIterable {
    case strict, ignore, replace
}

/// Options of a load, as `load_word2vec_format` takes them.
public struct VectorLoadOptions: Sendable {
    /// nil: detect from the content (and a `.safetensors` name).
    public var format: VectorFormat?
    /// Read at most this many records; nil or 0: all.
    public var limit: Int?
    public var unicodeErrors: UnicodeErrors
    /// safetensors: the keys file; nil: `NAME.vocab.txt` beside it.
    public var vocabFile: String?

    public init(
        format: VectorFormat? = nil, limit: Int? = nil, unicodeErrors: UnicodeErrors = .strict, vocabFile: String? = nil
    ) {
        self.format = format
        self.limit = limit
        self.unicodeErrors = unicodeErrors
        self.vocabFile = vocabFile
    }
}

extension WordVectors {
    /// Loads a vectors file bit-exactly as gensim 4.4's `KeyedVectors.load_word2vec_format`
    /// (`../shared/specs/word-vectors.md` §1), except that a repeated key is dropped instead of
    /// leaving an unnamed zero row.
    /// - Throws: `VectorsError` naming the file and the line or record at fault.
    public static func load(_ path: String, options: VectorLoadOptions = VectorLoadOptions()) throws(VectorsError)
        -> WordVectors
    {
        let data = try readFile(path)
        var format: VectorFormat
        if let given = options.format { format = given } else { format = try detectFormat(data: data, path: path) }
        let limit = options.limit.flatMap { $0 > 0 ? $0 : nil }
        var parser = RecordParser(path: path, unicodeErrors: options.unicodeErrors)
        let result = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Result<WordVectors, VectorsError> in
            let bytes = raw.bindMemory(to: UInt8.self)
            return Result { () throws(VectorsError) -> WordVectors in
                switch format {
                case .word2vecBinary: return try parser.binary(bytes, limit: limit)
                case .word2vecText: return try parser.text(bytes, header: true, limit: limit)
                case .glove: return try parser.text(bytes, header: false, limit: limit)
                case .safetensors:
                    return try parser.safetensors(
                        bytes, vocabFile: options.vocabFile ?? defaultVocabFile(for: path), limit: limit)
                }
            }
        }
        return try result.get()
    }

    /// The file's bytes, mapped (a 3.6 GB GoogleNews file is not copied into memory).
    static func readFile(_ path: String) throws(VectorsError) -> Data {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw VectorsError(.ioError, "cannot open: \(reason); check the path", file: path)
        }
        close(descriptor)
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw VectorsError(.ioError, "cannot read (is it a directory?)", file: path)
        }
    }

    /// What a vectors file holds, from its header alone (GloVe: its line count and line 1):
    /// for checks before a run and for estimates, without loading the matrix.
    /// - Throws: `VectorsError` for a file that is missing or has no readable header.
    public static func peekShape(_ path: String, format: VectorFormat? = nil) throws(VectorsError)
        -> (count: Int, dim: Int, format: VectorFormat)
    {
        let data = try readFile(path)
        let detected: VectorFormat
        if let format { detected = format } else { detected = try detectFormat(data: data, path: path) }
        let parser = RecordParser(path: path, unicodeErrors: .strict)
        let result = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Result<(Int, Int), VectorsError> in
            let bytes = raw.bindMemory(to: UInt8.self)
            return Result { () throws(VectorsError) -> (Int, Int) in
                switch detected {
                case .safetensors:
                    let entry = try parser.safetensorsEntry(bytes)
                    return (entry.count, entry.dim)
                case .word2vecBinary, .word2vecText:
                    return try parser.header(bytes.prefix { $0 != 0x0A }.map { $0 }[...])
                case .glove:
                    return try parser.gloveShape(bytes)
                }
            }
        }
        let (count, dim) = try result.get()
        return (count, dim, detected)
    }

    /// `x.safetensors` → `x.vocab.txt`.
    public static func defaultVocabFile(for path: String) -> String {
        (path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) : path) + ".vocab.txt"
    }

    /// The format by content: safetensors' header, a `count dim` first line (then binary or
    /// text by whether the first record reads as text), else GloVe.
    public static func detectFormat(data: Data, path: String) throws(VectorsError) -> VectorFormat {
        let head = [UInt8](data.prefix(1 << 16))
        // safetensors: a little-endian header length that fits the file, then a JSON object.
        let length = head.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        if head.count >= 10, length >= 2, length <= data.count - 8, head[8] == UInt8(ascii: "{") {
            return .safetensors
        }
        guard let newline = head.firstIndex(of: 0x0A) ?? (head.count == data.count ? head.count : nil) else {
            throw VectorsError(
                .valueError, "the first line is longer than 64 KiB: not a word2vec or GloVe file; give --format",
                file: path)
        }
        let first = String(decoding: head[..<newline], as: UTF8.self).split(whereSeparator: \.isWhitespace)
        if first.count == 2, let count = Int(first[0]), let dim = Int(first[1]), count >= 0, dim > 0 {
            // Text if the first record reads as a line of text (binary float bytes almost
            // always hold NULs, control bytes or invalid UTF-8 within 4 × dim bytes).
            let rest = Array(head[min(newline + 1, head.count)...])
            let line = rest.prefix { $0 != 0x0A }
            let decodable = !line.contains(0) && UTF8Repair.firstInvalid(Array(line)) == nil
            let fields = line.split(separator: 0x20, omittingEmptySubsequences: false)
            let numbers = fields.count == dim + 1 && fields.dropFirst().allSatisfy { PythonFloat.parse($0) != nil }
            let plain = line.allSatisfy { $0 >= 0x20 && $0 < 0x80 || $0 == 0x09 || $0 == 0x0D }
            if decodable && (numbers || plain) { return .word2vecText }
            return .word2vecBinary
        }
        return .glove
    }
}

/// The record loops of each format; the accumulated keys and rows.
struct RecordParser {
    let path: String
    let unicodeErrors: UnicodeErrors
    var keys = KeyTable()
    var matrix: [Float] = []
    var duplicates = 0

    init(path: String, unicodeErrors: UnicodeErrors) {
        self.path = path
        self.unicodeErrors = unicodeErrors
    }

    /// `count dim` (Python int() syntax: surrounding whitespace, an optional sign, underscores).
    func header(_ line: ArraySlice<UInt8>) throws(VectorsError) -> (count: Int, dim: Int) {
        guard let text = String(validating: line, as: UTF8.self) else {
            throw VectorsError(
                .unicodeDecodeError,
                "the header line is not UTF-8; is this a word2vec file? (GloVe has no header: --format glove)",
                file: path, location: "line 1")
        }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let count = Self.pythonInt(fields[0]), let dim = Self.pythonInt(fields[1]),
            count >= 0, dim >= 1
        else {
            throw VectorsError(
                .valueError,
                "the header is \"\(Self.escaped(text.prefix(60)))\", not `count dim`; GloVe files have no header (--format glove)",
                file: path, location: "line 1")
        }
        return (count, dim)
    }

    static func pythonInt(_ text: Substring) -> Int? {
        var digits = text
        if digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.first != "_", digits.last != "_", !digits.contains("__") else { return nil }
        return Int(digits.replacingOccurrences(of: "_", with: ""))
    }

    /// Control characters as \u escapes, so one bad line stays one line.
    static func escaped(_ text: some StringProtocol) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Refuses a header whose rows cannot fit in the file before anything is allocated.
    func reserve(rows: Int, dim: Int, minimumRecordBytes: Int, available: Int) throws(VectorsError) {
        let (need, overflow) = rows.multipliedReportingOverflow(by: minimumRecordBytes)
        guard !overflow, need <= available + 1 else {
            throw VectorsError(
                .eofError,
                "the header says \(rows) records of \(dim) values, but the file's \(available) bytes after it hold at most \(available / max(1, minimumRecordBytes)); is count incorrect or the file truncated?",
                file: path, location: "line 1")
        }
    }

    /// Decodes a key per `unicode_errors`; `location` names it in an error.
    func decodeKey(_ bytes: UnsafeBufferPointer<UInt8>, location: @autoclosure () -> String) throws(VectorsError)
        -> [UInt8]?
    {
        guard let bad = UTF8Repair.firstInvalid(bytes) else { return nil }
        let array = Array(bytes)
        switch unicodeErrors {
        case .strict:
            throw VectorsError(
                .unicodeDecodeError,
                "'utf-8' codec can't decode byte 0x\(String(array[bad], radix: 16)) in position \(bad); use --unicode-errors replace or ignore to load it anyway",
                file: path, location: location())
        case .ignore: return UTF8Repair.repair(array, mode: .ignore).bytes
        case .replace: return UTF8Repair.repair(array, mode: .replace).bytes
        }
    }

    mutating func add(key: UnsafeBufferPointer<UInt8>, row: UnsafeBufferPointer<Float>) {
        if keys.insert(key) { matrix.append(contentsOf: row) } else { duplicates += 1 }
    }

    mutating func add(key: [UInt8], row: UnsafeBufferPointer<Float>) {
        key.withUnsafeBufferPointer { add(key: $0, row: row) }
    }

    func finish(dim: Int, format: VectorFormat) -> WordVectors {
        WordVectors(keys: keys, dim: dim, matrix: matrix, format: format, duplicatesDropped: duplicates)
    }

    // MARK: - word2vec binary

    mutating func binary(_ bytes: UnsafeBufferPointer<UInt8>, limit: Int?) throws(VectorsError) -> WordVectors {
        guard let newline = bytes.firstIndex(of: 0x0A) else {
            throw VectorsError(.eofError, "no header line (`count dim`)", file: path, location: "line 1")
        }
        let (count, dim) = try header(bytes[..<newline][...].map { $0 }[...])
        let rows = min(count, limit ?? count)
        let vectorBytes = dim * 4
        try reserve(rows: rows, dim: dim, minimumRecordBytes: vectorBytes + 1, available: bytes.count - newline - 1)
        keys = KeyTable(capacity: rows)
        matrix.reserveCapacity(rows * dim)
        var row = [Float](repeating: 0, count: dim)
        var position = newline + 1
        let end = bytes.count
        for record in 0..<rows {
            while position < end && bytes[position] == 0x0A { position += 1 }
            let start = position
            guard
                let space = UnsafeBufferPointer(rebasing: bytes[start..<end]).firstIndex(of: 0x20).map({ $0 + start }),
                end - (space + 1) >= vectorBytes
            else {
                throw VectorsError(
                    .eofError,
                    "unexpected end of input; is count incorrect or file otherwise damaged? (the header says \(count) records, \(record) are complete)",
                    file: path, location: "record \(record + 1) at byte \(start)")
            }
            row.withUnsafeMutableBytes { target in
                target.copyMemory(
                    from: UnsafeRawBufferPointer(
                        rebasing: UnsafeRawBufferPointer(bytes)[space + 1..<space + 1 + vectorBytes]))
            }
            #if _endian(big)
                for index in 0..<dim { row[index] = Float(bitPattern: UInt32(littleEndian: row[index].bitPattern)) }
            #endif
            let key = UnsafeBufferPointer(rebasing: bytes[start..<space])
            let repaired = try decodeKey(key, location: "record \(record + 1) at byte \(start)")
            row.withUnsafeBufferPointer { values in
                if let repaired { add(key: repaired, row: values) } else { add(key: key, row: values) }
            }
            position = space + 1 + vectorBytes
        }
        return finish(dim: dim, format: .word2vecBinary)
    }

    // MARK: - word2vec text and GloVe

    mutating func text(_ bytes: UnsafeBufferPointer<UInt8>, header hasHeader: Bool, limit: Int?) throws(VectorsError)
        -> WordVectors
    {
        let end = bytes.count
        var position = 0
        var lineNumber = 0
        /// The next line (Python readline), without its `\n`; nil at the end of the file.
        func nextLine() -> Range<Int>? {
            guard position < end else { return nil }
            let start = position
            let stop =
                UnsafeBufferPointer(rebasing: bytes[start..<end]).firstIndex(of: 0x0A).map { $0 + start } ?? end
            position = stop + 1
            lineNumber += 1
            return start..<stop
        }
        var count: Int
        var dim: Int
        if hasHeader {
            guard let line = nextLine() else {
                throw VectorsError(.eofError, "the file is empty; expected a `count dim` line", file: path)
            }
            (count, dim) = try header(Array(bytes[line])[...])
        } else {
            (count, dim) = try gloveShape(bytes)
        }
        let rows = min(count, limit ?? count)
        try reserve(rows: rows, dim: dim, minimumRecordBytes: 2 * dim, available: end - position)
        keys = KeyTable(capacity: rows)
        matrix.reserveCapacity(rows * dim)
        var row = [Float](repeating: 0, count: dim)
        for record in 0..<rows {
            guard var line = nextLine() else {
                throw VectorsError(
                    .eofError,
                    "unexpected end of input; is count incorrect or file otherwise damaged? (\(hasHeader ? "the header says" : "counted") \(count) records, the file ends after \(record))",
                    file: path, location: "line \(lineNumber + 1)")
            }
            while !line.isEmpty && Self.isASCIISpace(bytes[line.upperBound - 1]) {
                line = line.lowerBound..<line.upperBound - 1
            }
            let location = "line \(lineNumber)"
            let lineBytes = UnsafeBufferPointer(rebasing: bytes[line])
            if let repaired = try decodeKey(lineBytes, location: location) {
                try repaired.withUnsafeBufferPointer { (buffer) throws(VectorsError) in
                    try textRecord(buffer, dim: dim, row: &row, location: location)
                }
            } else {
                try textRecord(lineBytes, dim: dim, row: &row, location: location)
            }
        }
        return finish(dim: dim, format: hasHeader ? .word2vecText : .glove)
    }

    /// One `word v1 … vdim` line (already right-stripped and decoded): split on single spaces.
    mutating func textRecord(_ lineBytes: UnsafeBufferPointer<UInt8>, dim: Int, row: inout [Float], location: String)
        throws(VectorsError)
    {
        guard let space = lineBytes.firstIndex(of: 0x20) else {
            throw VectorsError(
                .valueError,
                lineBytes.isEmpty
                    ? "a blank line where a record should be (gensim fails on it too); remove it"
                    : "\"\(Self.escaped(String(decoding: lineBytes.prefix(40), as: UTF8.self)))\" has no values after the word; expected \(dim)",
                file: path, location: location)
        }
        var value = 0
        var fieldStart = space + 1
        while true {
            var fieldEnd = fieldStart
            while fieldEnd < lineBytes.count && lineBytes[fieldEnd] != 0x20 { fieldEnd += 1 }
            guard value < dim else {
                throw VectorsError(
                    .valueError, "more than \(dim) values after the word; expected exactly \(dim)", file: path,
                    location: location)
            }
            guard let number = PythonFloat.parse(UnsafeBufferPointer(rebasing: lineBytes[fieldStart..<fieldEnd])) else {
                let field = String(decoding: lineBytes[fieldStart..<fieldEnd].prefix(40), as: UTF8.self)
                throw VectorsError(
                    .valueError,
                    "could not convert string to float: '\(Self.escaped(field))' (value \(value + 1); fields are separated by single spaces)",
                    file: path, location: location)
            }
            row[value] = Float(number)
            value += 1
            if fieldEnd >= lineBytes.count { break }
            fieldStart = fieldEnd + 1
        }
        guard value == dim else {
            // One value would be broadcast over the row by numpy (a gensim bug): refused too.
            throw VectorsError(
                .valueError, "\(value) value(s) after the word; expected \(dim)", file: path, location: location)
        }
        row.withUnsafeBufferPointer { add(key: UnsafeBufferPointer(rebasing: lineBytes[..<space]), row: $0) }
    }

    /// Python's bytes.rstrip() set: space, \t, \n, \r, \v, \f.
    @inline(__always)
    static func isASCIISpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }

    /// GloVe's shape as gensim takes it: every readline() counts (a trailing blank line too),
    /// dim is the field count of line 1 (right-stripped) minus one.
    func gloveShape(_ bytes: UnsafeBufferPointer<UInt8>) throws(VectorsError) -> (count: Int, dim: Int) {
        let end = bytes.count
        var lines = 0
        if let base = bytes.baseAddress {
            var index = 0
            while index < end {
                guard let found = memchr(base + index, 0x0A, end - index) else {
                    lines += 1
                    break
                }
                lines += 1
                index = UnsafeRawPointer(found).assumingMemoryBound(to: UInt8.self) - base + 1
            }
        }
        var first = bytes.firstIndex(of: 0x0A) ?? end
        while first > 0 && Self.isASCIISpace(bytes[first - 1]) { first -= 1 }
        let dim = bytes[0..<first].split(separator: 0x20, omittingEmptySubsequences: false).count - 1
        guard dim >= 1 else {
            throw VectorsError(
                .valueError, "line 1 has no values after the word; not a GloVe file", file: path, location: "line 1")
        }
        return (lines, dim)
    }

    // MARK: - safetensors

    /// The `vectors` tensor of a safetensors file: F32 [count, dim] and where its data starts.
    func safetensorsEntry(_ bytes: UnsafeBufferPointer<UInt8>) throws(VectorsError)
        -> (count: Int, dim: Int, dataStart: Int)
    {
        var length = 0
        for (index, byte) in bytes.prefix(8).enumerated() { length |= Int(byte) << (8 * index) }
        guard bytes.count >= 8, length >= 2, length <= bytes.count - 8 else {
            throw VectorsError(.valueError, "not a safetensors file (its header length does not fit)", file: path)
        }
        let layout: SafeTensors.Layout
        do {
            layout = try SafeTensors.layout(of: Array(bytes.prefix(8 + length)), path: path)
        } catch {
            throw VectorsError(.valueError, error.message, file: path)
        }
        guard let entry = layout.tensors.first(where: { $0.tensor.name == "vectors" }) else {
            throw VectorsError(
                .valueError,
                "no tensor \"vectors\" (has \(layout.tensors.map { "\"\($0.tensor.name)\"" }.joined(separator: ", ")))",
                file: path)
        }
        guard entry.tensor.dtype == .float32, entry.tensor.shape.count == 2, entry.tensor.shape[1] >= 1 else {
            throw VectorsError(
                .valueError,
                "tensor \"vectors\" is \(entry.tensor.dtype.rawValue) \(entry.tensor.shape); expected F32 [count, dim]",
                file: path)
        }
        guard layout.dataStart + entry.range.upperBound <= bytes.count else {
            throw VectorsError(.eofError, "the file is shorter than its header says; re-create it", file: path)
        }
        return (entry.tensor.shape[0], entry.tensor.shape[1], layout.dataStart + entry.range.lowerBound)
    }

    mutating func safetensors(_ bytes: UnsafeBufferPointer<UInt8>, vocabFile: String, limit: Int?) throws(VectorsError)
        -> WordVectors
    {
        let (count, dim, dataStart) = try safetensorsEntry(bytes)
        let vocab: Data
        do {
            vocab = try Data(contentsOf: URL(fileURLWithPath: vocabFile))
        } catch {
            throw VectorsError(
                .ioError, "cannot read the keys file \(vocabFile) (one key per line); give it with --vocab", file: path)
        }
        let vocabBytes = [UInt8](vocab)
        let lines = vocabBytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        let keyCount = vocab.last == 0x0A ? lines.count - 1 : lines.count
        guard keyCount == count else {
            throw VectorsError(
                .valueError, "\(vocabFile) has \(keyCount) keys for \(count) rows; they must match", file: path)
        }
        let rows = min(count, limit ?? count)
        keys = KeyTable(capacity: rows)
        matrix.reserveCapacity(rows * dim)
        // The whole matrix at once; then keys, dropping the rows of repeated ones.
        var all = [Float](repeating: 0, count: rows * dim)
        all.withUnsafeMutableBytes { target in
            target.copyMemory(
                from: UnsafeRawBufferPointer(
                    rebasing: UnsafeRawBufferPointer(bytes)[dataStart..<dataStart + rows * dim * 4]))
        }
        #if _endian(big)
            for index in all.indices { all[index] = Float(bitPattern: UInt32(littleEndian: all[index].bitPattern)) }
        #endif
        var kept: [Int] = []
        try vocabBytes.withUnsafeBufferPointer { (whole) throws(VectorsError) in
            for index in 0..<rows {
                let key = UnsafeBufferPointer(rebasing: whole[lines[index].startIndex..<lines[index].endIndex])
                let repaired = try decodeKey(key, location: "\(vocabFile) line \(index + 1)")
                let isNew =
                    repaired.map { fixed in fixed.withUnsafeBufferPointer { keys.insert($0) } } ?? keys.insert(key)
                if isNew { kept.append(index) } else { duplicates += 1 }
            }
        }
        if duplicates == 0 {
            matrix = all
        } else {
            for index in kept { matrix.append(contentsOf: all[index * dim..<(index + 1) * dim]) }
        }
        return finish(dim: dim, format: .safetensors)
    }
}
