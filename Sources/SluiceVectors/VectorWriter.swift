import Foundation
import SluiceIO

extension WordVectors {
    /// What `load_summary` reports: enough to tell two loads apart without printing the matrix.
    public struct Summary: Sendable {
        public var count: Int
        public var dim: Int
        /// SHA-256 of the UTF-8 keys joined by `\n`.
        public var keysSHA256: String
        /// SHA-256 of the little-endian float32 matrix, row-major.
        public var vectorsSHA256: String
        public var firstKeys: [String]
        public var lastKeys: [String]
    }

    public var summary: Summary {
        var keyHasher = SHA256Hasher()
        for index in 0..<count {
            if index > 0 { keyHasher.update([0x0A]) }
            keyHasher.update(Array(keys.utf8(index)))
        }
        return Summary(
            count: count, dim: dim, keysSHA256: keyHasher.finalizeHex(),
            vectorsSHA256: SHA256Hasher.hex(LittleEndian.bytes(of: matrix)),
            firstKeys: (0..<min(5, count)).map { keys[$0] },
            lastKeys: (max(0, count - 5)..<count).map { keys[$0] })
    }

    /// Writes the vectors in `format`, atomically, so that loading the result gives the same
    /// keys and float32 bits (text uses the shortest repr that reads back to the same float,
    /// as numpy's `str(np.float32(x))` does).
    /// - Throws: `VectorsError` for a key the format cannot hold (a space or newline in a
    ///   text key, a newline in a safetensors key); `IOError` as rethrown text.
    public func write(to path: String, format: VectorFormat) throws(VectorsError) {
        for index in 0..<count {
            let key = keys.utf8(index)
            let forbidden: [UInt8]
            switch format {
            case .word2vecText, .glove: forbidden = [0x20, 0x0A, 0x0D, 0x09, 0x0B, 0x0C]
            case .word2vecBinary: forbidden = [0x20]
            case .safetensors: forbidden = [0x0A]
            }
            if key.contains(where: forbidden.contains) || (format == .word2vecBinary && key.first == 0x0A) {
                throw VectorsError(
                    .valueError,
                    "key \(index + 1) (\"\(RecordParser.escaped(keys[index]))\") contains a character the \(format.rawValue) format uses as a separator; choose another --to",
                    file: path)
            }
        }
        do {
            switch format {
            case .safetensors:
                _ = try SafeTensors.writeFloat32([("vectors", [count, dim], matrix)], to: path)
                var vocab: [UInt8] = []
                for index in 0..<count {
                    vocab.append(contentsOf: keys.utf8(index))
                    vocab.append(0x0A)
                }
                try AtomicFileWriter.write(vocab, to: Self.defaultVocabFile(for: path))
            case .word2vecBinary:
                let writer = try AtomicFileWriter(path: path)
                try writer.write(Array("\(count) \(dim)\n".utf8))
                var buffer: [UInt8] = []
                for index in 0..<count {
                    buffer.append(contentsOf: keys.utf8(index))
                    buffer.append(0x20)
                    buffer.append(contentsOf: LittleEndian.bytes(of: Array(row(index))))
                    if buffer.count >= 1 << 20 {
                        try writer.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                try writer.write(buffer)
                try writer.commit()
            case .word2vecText, .glove:
                let writer = try AtomicFileWriter(path: path)
                if format == .word2vecText { try writer.write(Array("\(count) \(dim)\n".utf8)) }
                var buffer: [UInt8] = []
                for index in 0..<count {
                    buffer.append(contentsOf: keys.utf8(index))
                    for value in row(index) {
                        buffer.append(0x20)
                        buffer.append(contentsOf: Self.numpyString(value).utf8)
                    }
                    buffer.append(0x0A)
                    if buffer.count >= 1 << 20 {
                        try writer.write(buffer)
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                try writer.write(buffer)
                try writer.commit()
            }
        } catch {
            throw VectorsError(.ioError, "\(error)", file: path)
        }
    }

    /// numpy's `str(np.float32(x))` for word-vector values: the shortest repr that round-trips,
    /// scientific with a two-digit signed exponent where Swift writes one (`1e-05`,
    /// `1.2345679e+08`).
    static func numpyString(_ value: Float) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is the shortest round-trip digits too; only the exponent's
        // layout differs (numpy writes at least two digits and a sign).
        let text = value.description
        let parts = text.split(separator: "e")
        guard parts.count == 2, let exponent = Int(parts[1]) else { return text }
        var mantissa = String(parts[0])
        if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
        let sign = exponent < 0 ? "-" : "+"
        let magnitudeText = String(abs(exponent))
        return "\(mantissa)e\(sign)\(magnitudeText.count < 2 ? "0" + magnitudeText : magnitudeText)"
    }
}
