/// Counts GPT-2 pre-tokenizer pieces ("words") — the only thing BPE training needs from the
/// corpus, so memory grows with the number of distinct words, not with the corpus.
///
/// Count each part of a corpus with its own counter (in parallel, on threads or in separate
/// processes), then `merge` the counters: the result does not depend on how the corpus was cut.
public struct WordCounter: Sendable {
    /// Distinct words and how often each occurred.
    public private(set) var counts: [[UInt8]: Int] = [:]
    /// Bytes of text counted.
    public private(set) var byteCount = 0

    public init() {}

    /// Adds the words of one document (UTF-8; invalid bytes are words of their own, as the
    /// pre-tokenizer treats them).
    public mutating func add(document text: [UInt8]) {
        byteCount += text.count
        unsafe text.withUnsafeBufferPointer { bytes in
            var pieces = unsafe Pieces(bytes, .shared)
            while let piece = pieces.next() {
                let word = unsafe Array(UnsafeBufferPointer(rebasing: bytes[piece]))
                counts[word, default: 0] += 1
            }
        }
    }

    /// Adds `count` occurrences of `word` (for counts read back from disk).
    public mutating func add(word: [UInt8], count: Int) {
        counts[word, default: 0] += count
    }

    /// Adds another counter's words.
    public mutating func merge(_ other: WordCounter) {
        byteCount += other.byteCount
        if counts.isEmpty {
            counts = other.counts
            return
        }
        for (word, count) in other.counts { counts[word, default: 0] += count }
    }

    /// The counts as bytes: `u32 distinct words`, then per word (sorted by bytes, so the file
    /// is the same whatever the hash seed) `u32 length, bytes, u64 count`, little-endian.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        func append(_ value: UInt64, bytes: Int) {
            for shift in 0..<bytes { output.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(shift)))) }
        }
        append(UInt64(byteCount), bytes: 8)
        append(UInt64(counts.count), bytes: 8)
        for (word, count) in counts.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            append(UInt64(word.count), bytes: 4)
            output += word
            append(UInt64(count), bytes: 8)
        }
        return output
    }

    /// Reads `serialized()` output.
    /// - Throws: `BPEError` naming `source` when the bytes are cut short or malformed.
    public init(serialized bytes: [UInt8], source: String) throws(BPEError) {
        var offset = 0
        func read(_ width: Int) throws(BPEError) -> Int {
            guard offset + width <= bytes.count else {
                throw BPEError(.malformedLine, file: source, "word counts end early at byte \(offset)")
            }
            var value = 0
            for index in 0..<width { value |= Int(bytes[offset + index]) << (8 * index) }
            offset += width
            return value
        }
        byteCount = try read(8)
        let distinct = try read(8)
        counts.reserveCapacity(distinct)
        for _ in 0..<distinct {
            let length = try read(4)
            guard offset + length <= bytes.count else {
                throw BPEError(.malformedLine, file: source, "word counts end early at byte \(offset)")
            }
            let word = Array(bytes[offset..<(offset + length)])
            offset += length
            counts[word, default: 0] += try read(8)
        }
    }
}
