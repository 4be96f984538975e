// How this matches HF tokenizers' BpeTrainer (tokenizers/src/models/bpe/trainer.rs, 0.2x),
// merge for merge — the contract tested against merges HF produced:
// - Ids: special tokens first (in the order given), then the 256 byte-level characters sorted
//   by code point (GPT-2's bytes_to_unicode: bytes 33–126, 161–172, 174–255, then 0–32,
//   127–160, 173), then each new token as it is made.
// - The next merge is the pair with the highest count; among equal counts, the smallest pair
//   of ids (left id, then right id). That is the tie rule — it follows from HF's heap order,
//   not from token strings, frequencies of parts, or first occurrence.
// - Counts are updated incrementally from each merged word's changes (HF's Word::merge: the
//   pair on the left and on the right of each merged occurrence lose one, the new pairs gain
//   one); the merged pair's own count is left as is, as HF does. A heap entry whose count is
//   stale is pushed back with the current count; an entry carries the words where its pair
//   was made, so the rare merge whose token string already exists behaves exactly like HF's.
// - Stops at `vocabSize` tokens (specials + alphabet + new tokens), when the best count is
//   below 1 or below `minFrequency`, or when no pair is left.
// Performance: words are stored once (distinct words, with their counts) as one flat array of
// ids compacted in place; pair counts in one dictionary keyed by the packed pair; the heap holds
// (count, pair, positions) with positions as plain arrays (a word listed twice merges nothing
// the second time).

/// Learns byte-level BPE merges from word counts, exactly as HF tokenizers' `BpeTrainer`
/// with a ByteLevel pre-tokenizer and the 256-byte initial alphabet.
public struct BPETrainer: Sendable {
    public var vocabSize: Int
    /// Pairs seen fewer times are never merged.
    public var minFrequency: Int
    /// Added first (ids 0…), never merged.
    public var specialTokens: [String]

    public init(vocabSize: Int, minFrequency: Int = 0, specialTokens: [String] = []) {
        self.vocabSize = vocabSize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
    }

    /// What training learned.
    public struct Result: Sendable {
        /// Every token in id order (HF's numbering): special tokens (their UTF-8), the 256
        /// bytes in byte-level character order, then the new tokens.
        public var tokens: [[UInt8]]
        public var specialTokenCount: Int
        /// The merges in order, as ids into `tokens`: left, right, and the token made (which
        /// can be an existing one when two merges spell the same bytes).
        public var merges: [(left: Int, right: Int, result: Int)]

        /// The ranks of a tiktoken rank file: the tokens without the special tokens, in id order
        /// (bytes first, then merges — GPT-2's convention). Special tokens come after them.
        public var ranks: [[UInt8]] { Array(tokens[specialTokenCount...]) }

        /// Each special token's id in the rank numbering (after every rank, like GPT-2's
        /// `<|endoftext|>` = 50256).
        public func specialTokenIDs(names: [String]) -> [String: UInt32] {
            var ids: [String: UInt32] = [:]
            for (index, name) in names.enumerated() { ids[name] = UInt32(tokens.count - specialTokenCount + index) }
            return ids
        }
    }

    /// GPT-2's byte → character map (`bytes_to_unicode`), as Unicode scalar values.
    public static let byteLevelCharacters: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                map[byte] = UInt32(byte)
            } else {
                map[byte] = next
                next += 1
            }
        }
        return map
    }()

    /// The byte-level string of `bytes` (what HF's vocab.json and merges.txt hold), as UTF-8.
    public static func byteLevelString(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        for byte in bytes {
            let scalar = byteLevelCharacters[Int(byte)]
            if scalar < 0x80 {
                output.append(UInt8(scalar))
            } else {
                output.append(UInt8(0xC0 | (scalar >> 6)))
                output.append(UInt8(0x80 | (scalar & 0x3F)))
            }
        }
        return output
    }

    public func train(_ words: WordCounter, progress: (_ merges: Int, _ tokens: Int) -> Void = { _, _ in }) -> Result {
        // Ids: specials, then the alphabet by character code point.
        var tokens: [[UInt8]] = []
        var idOfString: [[UInt8]: Int] = [:]  // HF's word_to_id, keyed by the byte-level string
        for name in specialTokens where idOfString[Array(name.utf8)] == nil {
            idOfString[Array(name.utf8)] = tokens.count
            tokens.append(Array(name.utf8))
        }
        let specialCount = tokens.count
        var byteID = [Int](repeating: 0, count: 256)
        for byte in (0..<256).sorted(by: { Self.byteLevelCharacters[$0] < Self.byteLevelCharacters[$1] }) {
            let key = Self.byteLevelString([UInt8(byte)])
            if let existing = idOfString[key] {
                byteID[byte] = existing
                continue
            }
            idOfString[key] = tokens.count
            byteID[byte] = tokens.count
            tokens.append([UInt8(byte)])
        }

        // Words as one flat array of ids; each word's current length shrinks as it merges.
        var symbols: [UInt32] = []
        var wordStart: [Int] = []
        var wordLength: [Int] = []
        var wordCount: [Int] = []
        symbols.reserveCapacity(words.counts.reduce(0) { $0 + $1.key.count })
        for (word, count) in words.counts where !word.isEmpty {
            wordStart.append(symbols.count)
            wordLength.append(word.count)
            wordCount.append(count)
            for byte in word { symbols.append(UInt32(byteID[Int(byte)])) }
        }

        @inline(__always) func pack(_ left: UInt32, _ right: UInt32) -> UInt64 { UInt64(left) << 32 | UInt64(right) }

        var pairCounts: [UInt64: Int] = [:]
        var positionLists: [[Int32]] = []
        var update: [UInt64: [Int32]] = [:]  // HF's where_to_update
        for word in wordStart.indices {
            let start = wordStart[word]
            let count = wordCount[word]
            for index in start..<(start + wordLength[word] - 1) {
                let pair = pack(symbols[index], symbols[index + 1])
                pairCounts[pair, default: 0] += count
                update[pair, default: []].append(Int32(word))
            }
        }
        var heap = PairHeap()
        for (pair, positions) in update {
            let count = pairCounts[pair] ?? 0
            if count > 0 {
                positionLists.append(positions)
                heap.push(.init(count: count, pair: pair, positions: positionLists.count - 1))
            }
        }
        update.removeAll()

        var merges: [(left: Int, right: Int, result: Int)] = []
        while tokens.count < vocabSize {
            guard var top = heap.pop() else { break }
            let current = pairCounts[top.pair] ?? 0
            if top.count != current {
                top.count = current
                heap.push(top)
                continue
            }
            if top.count < 1 || minFrequency > top.count { break }
            let left = UInt32(top.pair >> 32)
            let right = UInt32(truncatingIfNeeded: top.pair)
            let newBytes = tokens[Int(left)] + tokens[Int(right)]
            let key = Self.byteLevelString(newBytes)
            let newID: Int
            if let existing = idOfString[key] {
                newID = existing
            } else {
                newID = tokens.count
                idOfString[key] = newID
                tokens.append(newBytes)
            }
            merges.append((Int(left), Int(right), newID))
            let replacement = UInt32(newID)

            // Merge the pair in every word it was made in; apply HF's changes.
            for word32 in positionLists[top.positions] {
                let word = Int(word32)
                let start = wordStart[word]
                let length = wordLength[word]
                let count = wordCount[word]
                var read = start
                var write = start
                let end = start + length
                while read < end {
                    let symbol = symbols[read]
                    if symbol == left && read + 1 < end && symbols[read + 1] == right {
                        if write > start {
                            let previous = symbols[write - 1]
                            pairCounts[pack(previous, left), default: 0] -= count
                            let made = pack(previous, replacement)
                            pairCounts[made, default: 0] += count
                            update[made, default: []].append(word32)
                        }
                        if read + 2 < end {
                            let next = symbols[read + 2]
                            pairCounts[pack(right, next), default: 0] -= count
                            let made = pack(replacement, next)
                            pairCounts[made, default: 0] += count
                            update[made, default: []].append(word32)
                        }
                        symbols[write] = replacement
                        write += 1
                        read += 2
                    } else {
                        symbols[write] = symbol
                        write += 1
                        read += 1
                    }
                }
                wordLength[word] = write - start
            }
            positionLists[top.positions] = []  // never read again: release
            for (pair, positions) in update {
                let count = pairCounts[pair] ?? 0
                if count > 0 {
                    positionLists.append(positions)
                    heap.push(.init(count: count, pair: pair, positions: positionLists.count - 1))
                }
            }
            update.removeAll(keepingCapacity: true)
            if merges.count % 1000 == 0 { progress(merges.count, tokens.count) }
        }
        progress(merges.count, tokens.count)
        return Result(tokens: tokens, specialTokenCount: specialCount, merges: merges)
    }
}

/// A binary max-heap of candidate merges: higher count first, then the smaller pair.
struct PairHeap {
    struct Entry {
        var count: Int
        var pair: UInt64
        var positions: Int
    }

    private var entries: [Entry] = []

    @inline(__always)
    private static func above(_ a: Entry, _ b: Entry) -> Bool {
        a.count != b.count ? a.count > b.count : a.pair < b.pair
    }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.above(entries[child], entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < entries.count else { break }
                var best = left
                if left + 1 < entries.count && Self.above(entries[left + 1], entries[left]) { best = left + 1 }
                guard Self.above(entries[best], entries[parent]) else { break }
                entries.swapAt(best, parent)
                parent = best
            }
        }
        return top
    }
}
