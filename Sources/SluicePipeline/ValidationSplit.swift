import Foundation
import SluiceConfig
import SluiceIO

/// `split` (docs/FORMATS.md, Splits): documents sent to a validation split with its own stream,
/// windows and shards under `OUT/validation/`, chosen by content so that the choice does not
/// depend on workers, part boundaries or the order of the inputs.
///
/// A document's key is the first 8 bytes (big-endian) of SHA-256 over the seed (UInt64
/// little-endian) and its ids as stored (little-endian, 2 or 4 bytes each). `validation_fraction`
/// f takes the documents whose key is below f × 2^64; `validation_documents` n takes the n
/// lowest keys (ties in stream order). Identical documents share a key, so copies of one text
/// never land on both sides of the fraction rule.
enum ValidationSplit {
    static let name = "validation"

    /// The split's layout under `layout` (rooted, or relative names for the relative layout).
    static func layout(_ layout: OutputLayout) -> OutputLayout { OutputLayout(root: layout.path(name)) }

    typealias Written = (stream: TokenStream, sha256: String, fileBytes: Int)

    /// Which documents of `stream` (read from `file`) go to validation.
    static func chosen(stream: TokenStream, file: TokenStreamFile, settings: SplitSettings) throws -> [Bool] {
        var keys: [UInt64] = []
        keys.reserveCapacity(stream.documents.count)
        var seed = [UInt8](repeating: 0, count: 8)
        for index in 0..<8 { seed[index] = UInt8(truncatingIfNeeded: settings.seed >> (8 * UInt64(index))) }
        var bytes: [UInt8] = []
        for document in stream.documents {
            try file.readBytes(start: document.start, count: document.length, into: &bytes)
            var hasher = SHA256Hasher()
            hasher.update(seed)
            hasher.update(bytes)
            keys.append(UInt64(hasher.finalizeHex().prefix(16), radix: 16) ?? 0)
        }
        if settings.validationDocuments > 0 {
            let lowest = keys.indices.sorted { (keys[$0], $0) < (keys[$1], $1) }.prefix(settings.validationDocuments)
            var chosen = [Bool](repeating: false, count: keys.count)
            for index in lowest { chosen[index] = true }
            return chosen
        }
        let threshold = settings.validationFraction * 18_446_744_073_709_551_616.0
        return keys.map { Double($0) < threshold }
    }

    /// Rewrites the stream file of `train` to hold the training documents only and writes the
    /// validation documents to `validation`'s, each with separators between its documents.
    static func write(
        stream: TokenStream, idBytes: Int, separator: UInt32?, chosen: [Bool], train: OutputLayout,
        validation: OutputLayout
    ) throws -> (train: Written, validation: Written) {
        let source = try TokenStreamFile(path: train.streamFile, idBytes: idBytes, length: stream.length)
        try FileManager.default.createDirectory(atPath: validation.workDirectory, withIntermediateDirectories: true)
        var separatorBytes: [UInt8] = []
        if let separator {
            for index in 0..<idBytes {
                separatorBytes.append(UInt8(truncatingIfNeeded: separator >> (8 * UInt32(index))))
            }
        }
        struct Output {
            let writer: AtomicFileWriter
            var hasher = SHA256Hasher()
            var documents: [(start: Int, length: Int)] = []
            var length = 0
        }
        var outputs = [
            Output(writer: try AtomicFileWriter(path: train.streamFile)),
            Output(writer: try AtomicFileWriter(path: validation.streamFile)),
        ]
        var bytes: [UInt8] = []
        for (document, isValidation) in zip(stream.documents, chosen) {
            let side = isValidation ? 1 : 0
            if !outputs[side].documents.isEmpty && !separatorBytes.isEmpty {
                try outputs[side].writer.write(separatorBytes)
                outputs[side].hasher.update(separatorBytes)
                outputs[side].length += 1
            }
            try source.readBytes(start: document.start, count: document.length, into: &bytes)
            outputs[side].documents.append((outputs[side].length, document.length))
            try outputs[side].writer.write(bytes)
            outputs[side].hasher.update(bytes)
            outputs[side].length += document.length
        }
        var written: [Written] = []
        for index in outputs.indices {
            try outputs[index].writer.commit()
            written.append(
                (
                    TokenStream(length: outputs[index].length, documents: outputs[index].documents),
                    outputs[index].hasher.finalizeHex(), outputs[index].length * idBytes
                ))
        }
        return (written[0], written[1])
    }
}
