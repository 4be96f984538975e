/// The pre-tokenizer's view of a Unicode scalar: GPT-2's pattern only ever asks whether a
/// scalar is a letter (`\p{L}`), a number (`\p{N}`), White_Space (`\s`) or none of those.
@usableFromInline
enum ScalarClass: UInt8, Sendable {
    case letter = 0
    case number = 1
    case whitespace = 2
    case other = 3
}

/// Class of every scalar, flat-indexed by code point (1.1 MB, built once per process in about
/// a millisecond from the 1,610 generated runs, into the buffer `ClassTables` reads). Flat
/// beats a two-stage table here: the ASCII fast path never reaches it, and non-ASCII text
/// touches few distinct cache lines.
enum UnicodeClassTable {
    /// Entries in the table: one per code point.
    static let count = 0x110000

    /// Writes the class of every code point that is not `other` into `table` (`count`
    /// entries, initialized to `other`).
    static func fill(_ table: UnsafeMutablePointer<UInt8>) {
        let starts = runStarts
        for index in starts.indices {
            let start = Int(starts[index] >> 2)
            let end = index + 1 < starts.count ? Int(starts[index + 1] >> 2) : count
            let cls = UInt8(truncatingIfNeeded: starts[index] & 3)
            if cls != ScalarClass.other.rawValue {
                for value in start..<end { unsafe table[value] = cls }
            }
        }
    }
}
