import Foundation
import SluiceIO

/// A docs part: one LZ4 frame holding documents as records of a little-endian UInt64 byte
/// length followed by that many bytes of UTF-8 text (docs/FORMATS.md).
public enum DocsPart {
    public static let formatName = "sluice.docs.v1"

    /// The sidecar written beside each part (`part-NNNNN.json`).
    public struct Sidecar: Codable, Sendable, Equatable {
        public var format = DocsPart.formatName
        public var part: Int
        /// Input names, in the order read.
        public var inputs: [String]
        public var documents: Int
        /// Bytes of document text (without the length prefixes).
        public var documentBytes: Int
        /// Size and SHA-256 of the `.lz4` file itself.
        public var fileBytes: Int
        public var sha256: String
        public var report: IngestReport
        /// Documents read from each input, in the order of `inputs` (for `sluice stats`; absent
        /// in parts written before it was recorded).
        public var documentsPerInput: [Int]?
        /// Digest of everything that determines the part (the inputs and the ingest settings):
        /// a rerun reuses the part only when it is unchanged.
        public var identity: String

        public init(
            part: Int, inputs: [String], documents: Int, documentBytes: Int, fileBytes: Int, sha256: String,
            report: IngestReport, identity: String
        ) {
            self.identity = identity
            self.part = part
            self.inputs = inputs
            self.documents = documents
            self.documentBytes = documentBytes
            self.fileBytes = fileBytes
            self.sha256 = sha256
            self.report = report
        }

        enum CodingKeys: String, CodingKey {
            case format, part, inputs, documents
            case documentBytes = "document_bytes"
            case fileBytes = "file_bytes"
            case sha256, report, identity
            case documentsPerInput = "documents_per_input"
        }
    }

    /// Streams documents into a part file.
    public final class Writer {
        private let frame: LZ4FrameWriter
        public private(set) var documentCount = 0
        public private(set) var documentBytes = 0

        public init(path: String) throws(IOError) {
            // Ingest's own per-byte work (sniffing, UTF-8 checks) takes about as long as LZ4
            // does: compressing on a second thread overlaps the two.
            var options = LZ4FrameWriter.Options()
            options.compressInBackground = true
            frame = try LZ4FrameWriter(path: path, options: options)
        }

        public func append(_ document: [UInt8]) throws(IOError) {
            var length = UInt64(document.count).littleEndian
            var failure: IOError?
            withUnsafeBytes(of: &length) { header in
                do throws(IOError) { try frame.write(header) } catch { failure = error }
            }
            if let failure { throw failure }
            try frame.write(document)
            documentCount += 1
            documentBytes += document.count
        }

        /// Appends a document as ingest handed it on; a spooled one is copied piece by piece.
        public func append(_ document: IngestedDocument) throws {
            switch document {
            case .bytes(let bytes): try append(bytes)
            case .spooled(let spool):
                var length = UInt64(spool.byteCount).littleEndian
                try withUnsafeBytes(of: &length) { try frame.write($0) }
                try spool.forEachPiece { try frame.write($0) }
                documentCount += 1
                documentBytes += spool.byteCount
            }
        }

        public func finish() throws(IOError) -> (sha256: String, byteCount: Int) {
            try frame.finish()
        }
    }

    /// Reads a part's documents in order, one at a time.
    public final class Reader {
        private let frame: LZ4FrameReader
        private var pending: [UInt8] = []
        private var pendingStart = 0
        public let path: String

        public init(path: String) throws(IOError) {
            self.path = path
            frame = try LZ4FrameReader(path: path)
        }

        /// The next document, or nil after the last.
        public func next() throws(IOError) -> [UInt8]? {
            guard let length = try nextLength() else { return nil }
            return try take(length, allowEnd: false)
        }

        /// The next document in pieces of at most `pieceBytes`, so that a huge one is never held
        /// whole: `body` gets each piece and the bytes of the document after it (0: the last).
        /// - Returns: false after the last document.
        public func nextDocument(pieceBytes: Int, _ body: (_ piece: [UInt8], _ remaining: Int) throws -> Void) throws
            -> Bool
        {
            guard let length = try nextLength() else { return false }
            var remaining = length
            repeat {
                let count = min(remaining, pieceBytes)
                let piece = try take(count, allowEnd: false) ?? []
                remaining -= count
                try body(piece, remaining)
            } while remaining > 0
            return true
        }

        /// Every remaining document in order, as text a tokenizer can take alone: a document of at
        /// most `pieceBytes` in one call, a larger one in chunks cut only where `safeCut` (given
        /// the text so far, returning a cut offset or 0) says no token can cross — the one
        /// definition of that re-cutting, for tokenize and count. `body(text, documentEnds)`.
        public func forEachDocumentChunk(
            pieceBytes: Int = IngestReader.streamThresholdBytes, safeCut: (UnsafeBufferPointer<UInt8>) -> Int,
            _ body: (_ text: [UInt8], _ documentEnds: Bool) throws -> Void
        ) throws {
            var recut = SafeRecut()
            while try nextDocument(
                pieceBytes: pieceBytes,
                { piece, remaining in try recut.feed(piece, last: remaining == 0, safeCut: safeCut, body) })
            {}
        }

        private func nextLength() throws(IOError) -> Int? {
            guard let header = try take(8, allowEnd: true) else { return nil }
            var length: UInt64 = 0
            for (index, byte) in header.enumerated() { length |= UInt64(byte) << (8 * UInt64(index)) }
            guard length < 1 << 40 else {
                throw IOError(
                    .decompression, path: path,
                    "document length \(length) is implausible; the part is corrupt — re-run ingest")
            }
            return Int(length)
        }

        private func take(_ count: Int, allowEnd: Bool) throws(IOError) -> [UInt8]? {
            while pending.count - pendingStart < count {
                guard let chunk = try frame.nextChunk() else {
                    if allowEnd && pending.count == pendingStart { return nil }
                    throw IOError(.truncated, path: path, "the part ends inside a document; re-run ingest")
                }
                if pendingStart > 0 {
                    pending.removeFirst(pendingStart)
                    pendingStart = 0
                }
                pending.append(contentsOf: chunk)
            }
            let result = Array(pending[pendingStart..<pendingStart + count])
            pendingStart += count
            return result
        }
    }
}

/// Re-cuts a document that arrives in pieces at offsets where a tokenizer cannot merge across
/// (`safeCut`: given the text so far, a cut offset or 0), so that each chunk can be tokenized
/// alone with exactly the ids of the whole. The one definition for tokenize, count and train-bpe.
public struct SafeRecut {
    private var carry: [UInt8] = []

    public init() {}

    /// Feeds the next piece (`last`: the document ends with it); `body(chunk, isLast)` gets each
    /// chunk as soon as it is safe. A document that arrives whole is passed on without a copy.
    public mutating func feed(
        _ piece: [UInt8], last: Bool, safeCut: (UnsafeBufferPointer<UInt8>) -> Int,
        _ body: (_ chunk: [UInt8], _ isLast: Bool) throws -> Void
    ) throws {
        if carry.isEmpty && last { return try body(piece, true) }
        carry += piece
        if last {
            defer { carry = [] }
            return try body(carry, true)
        }
        let cut = carry.withUnsafeBufferPointer(safeCut)
        guard cut > 0 else { return }  // no safe cut yet: wait for more text
        try body(Array(carry[..<cut]), false)
        carry.removeFirst(cut)
    }
}
