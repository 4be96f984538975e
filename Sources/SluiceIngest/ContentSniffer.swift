import SluiceIO

/// Decides what bytes are by their content, never by their name (docs/CONFIG.md, "Content
/// sniffing"): compressed and archive data is opened as such under any name, and binary data
/// (executables, images, columnar files, databases, NUL- or control-heavy blocks) is not text.
public enum ContentSniffer {
    /// How much of a document the binary rule looks at.
    public static let sampleBytes = 65_536

    /// A container recognised by its magic bytes.
    public enum Container: Equatable, Sendable {
        /// One compressed stream (gzip, bzip2, xz, zstd, lz4, lzip, compress).
        case compressed(String)
        /// An archive (zip, 7z, rar, tar, cpio, xar).
        case archive(String)

        public var name: String {
            switch self {
            case .compressed(let name), .archive(let name): name
            }
        }
    }

    static let compressedMagic: [(String, [UInt8])] = [
        ("gzip", [0x1F, 0x8B]),
        ("bzip2", [0x42, 0x5A, 0x68]),
        ("xz", [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]),
        ("zstd", [0x28, 0xB5, 0x2F, 0xFD]),
        ("lz4", [0x04, 0x22, 0x4D, 0x18]),
        ("lzip", [0x4C, 0x5A, 0x49, 0x50]),
        ("compress", [0x1F, 0x9D]),
    ]
    static let archiveMagic: [(String, [UInt8])] = [
        ("zip", [0x50, 0x4B, 0x03, 0x04]),
        ("zip", [0x50, 0x4B, 0x05, 0x06]),
        ("7z", [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]),
        ("rar", [0x52, 0x61, 0x72, 0x21, 0x1A, 0x07]),
        ("xar", [0x78, 0x61, 0x72, 0x21]),
        ("cpio", Array("070701".utf8)),
        ("cpio", Array("070707".utf8)),
    ]
    /// Formats that are binary by their first bytes, whatever follows.
    static let binaryMagic: [(String, [UInt8])] = [
        ("an ELF executable", [0x7F, 0x45, 0x4C, 0x46]),
        ("a PNG image", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
        ("a JPEG image", [0xFF, 0xD8, 0xFF]),
        ("a GIF image", Array("GIF8".utf8)),
        ("a PDF document", Array("%PDF-".utf8)),
        ("a Parquet file", Array("PAR1".utf8)),
        ("an Arrow file", Array("ARROW1".utf8)),
        ("an SQLite database", Array("SQLite format 3".utf8) + [0]),
        ("a WebAssembly module", [0x00, 0x61, 0x73, 0x6D]),
        ("a Java class file or Mach-O binary", [0xCA, 0xFE, 0xBA, 0xBE]),
        ("a Mach-O binary", [0xCF, 0xFA, 0xED, 0xFE]),
        ("a NumPy array", [0x93] + Array("NUMPY".utf8)),
        ("a TIFF image", [0x49, 0x49, 0x2A, 0x00]),
        ("a TIFF image", [0x4D, 0x4D, 0x00, 0x2A]),
        ("a WebP/RIFF file", Array("RIFF".utf8)),
        ("an OpenType font", [0x4F, 0x54, 0x54, 0x4F]),
        ("an HDF5 file", [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]),
    ]

    /// The container `prefix` starts, if any (tar is recognised by "ustar" at byte 257).
    public static func container(_ prefix: UnsafeRawBufferPointer) -> Container? {
        for (name, magic) in compressedMagic where starts(prefix, with: magic) { return .compressed(name) }
        for (name, magic) in archiveMagic where starts(prefix, with: magic) { return .archive(name) }
        if prefix.count >= 262 && prefix[257] == 0x75 && prefix[258] == 0x73 && prefix[259] == 0x74
            && prefix[260] == 0x61 && prefix[261] == 0x72
        {
            return .archive("tar")
        }
        return nil
    }

    /// Why `sample` (a document's first bytes, up to `sampleBytes`) is binary, or nil for text.
    ///
    /// The rule: a known binary signature; or at least 16 NUL bytes making up 1 % or more of
    /// the sample (or half of it); or control bytes (C0 other than TAB, LF, VT, FF, CR, ESC,
    /// BS; and DEL) making up 10 % or more; or control bytes and invalid UTF-8 sequences
    /// together making up 30 % or more (Latin-1 text stays well below). UTF-16 with a byte
    /// order mark is text. A few NULs or invalid bytes leave a document to the text policy.
    public static func binaryReason(_ sample: UnsafeRawBufferPointer) -> String? {
        if starts(sample, with: [0xFF, 0xFE]) || starts(sample, with: [0xFE, 0xFF]) { return nil }
        for (name, magic) in binaryMagic where starts(sample, with: magic) { return name }
        if container(sample) != nil { return "compressed or archive data" }
        let count = sample.count
        guard count > 0 else { return nil }
        let counted = counts(sample)
        let nul = counted.nul
        let suspect = counted.control + counted.invalid
        if (nul >= 16 && nul * 100 >= count) || nul * 2 >= count {
            return "binary data (\(nul) NUL bytes in the first \(count))"
        }
        if counted.control * 10 >= count || suspect * 10 >= count * 3 {
            return "binary data (\(suspect) control bytes or invalid UTF-8 sequences in the first \(count))"
        }
        return nil
    }

    /// What the binary rule counts in a sample.
    struct Counts: Equatable {
        var nul = 0
        /// C0 controls other than TAB, LF, VT, FF, CR, ESC and BS; and DEL.
        var control = 0
        /// Bytes that start no well-formed UTF-8 sequence (one cut by the sample's end is not
        /// counted: the sample ends there).
        var invalid = 0
    }

    static func counts(_ sample: UnsafeRawBufferPointer) -> Counts {
        let count = sample.count
        var counts = Counts()
        var index = 0
        while index < count {
            // Most text is printable ASCII and line ends, which no count cares about: skip it
            // 8 bytes at a time up to the first byte that is not, and after a whole plain word
            // 32 at a time (text with a non-ASCII letter every few bytes stays on the word test).
            if count - index >= 8 {
                let skip = plainTextPrefix(sample.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                if skip == 8 {
                    index += 8 + plainTextBlocks(sample, from: index + 8)
                    continue
                }
                if skip > 0 {
                    index += skip
                    continue
                }
            }
            let byte = sample[index]
            if byte < 0x80 {
                switch byte {
                case 0: counts.nul += 1
                case 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B: break
                case 0x01...0x1F, 0x7F: counts.control += 1
                default: break
                }
                index += 1
                continue
            }
            guard let (length, low, high) = UTF8Repair.sequenceShape(lead: byte) else {
                counts.invalid += 1
                index += 1
                continue
            }
            if index + length > count { break }
            let second = sample[index + 1]
            var valid = second >= low && second <= high
            var offset = 2
            while valid && offset < length {
                valid = sample[index + offset] & 0xC0 == 0x80
                offset += 1
            }
            if valid {
                index += length
            } else {
                counts.invalid += 1
                index += 1
            }
        }
        return counts
    }

    /// How many bytes from `index` on, in whole 32-byte blocks, are printable ASCII, TAB, LF or
    /// CR (none of which any count cares about): four words tested together a block. With the
    /// word test alone stopping at every line end, the sniffer was a tenth of a tar's ingest.
    @inline(__always)
    static func plainTextBlocks(_ sample: UnsafeRawBufferPointer, from index: Int) -> Int {
        var offset = index
        while sample.count - offset >= 32 {
            let flags =
                countedByteFlags(sample.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                | countedByteFlags(sample.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
                | countedByteFlags(sample.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
                | countedByteFlags(sample.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            if flags != 0 { break }
            offset &+= 32
        }
        return offset - index
    }

    /// How many of `word`'s bytes, from its first in memory, are surely printable ASCII, TAB,
    /// LF or CR (8 when all are); the rest go byte by byte.
    @inline(__always)
    static func plainTextPrefix(_ word: UInt64) -> Int {
        countedByteFlags(word).littleEndian.trailingZeroBitCount / 8
    }

    /// The high bit of each byte of `word` that may need the byte-by-byte path: every byte
    /// outside 0x20...0x7E that is not TAB, LF or CR is flagged. Classic SWAR tests: a borrow
    /// can only flag a byte above a real hit, so a flag may be spurious (a space after a line
    /// feed: slower, still right) but a needed one is never missing — the equality tests' only
    /// spurious hits are 0x08, 0x0B and 0x0C above a TAB, LF or CR, bytes no count takes.
    @inline(__always)
    static func countedByteFlags(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let belowSpace = (word &- ones &* 0x20) & ~word
        @inline(__always) func equal(_ byte: UInt64) -> UInt64 {
            let difference = word ^ (ones &* byte)
            return (difference &- ones) & ~difference
        }
        let allowed = equal(0x0A) | equal(0x09) | equal(0x0D)
        return (word | belowSpace | equal(0x7F)) & ~allowed & (ones &* 0x80)
    }

    static func starts(_ bytes: UnsafeRawBufferPointer, with magic: [UInt8]) -> Bool {
        guard bytes.count >= magic.count else { return false }
        for (index, byte) in magic.enumerated() where bytes[index] != byte { return false }
        return true
    }
}
