// Performance notes:
// - Pieces are looked up whole first; only a piece that is not a token runs BPE. On English
//   prose most pieces hit, so the merge loops matter mainly for rare words and other scripts.
// - Pieces shorter than `heapThreshold` bytes merge with a linear rescan over stack-allocated
//   id/rank arrays (no heap allocation per piece). Longer pieces use a binary heap keyed by
//   (rank << 32 | position) with lazy invalidation: O(m log n), so 100k repeats of one
//   letter take milliseconds instead of minutes.

/// Encodes text into GPT-2-style byte-level BPE token ids and back, exactly as tiktoken does.
///
/// A value type over an immutable, shared `Vocabulary`: copy it to every thread freely.
public struct BPEEncoder: Sendable {
    public let vocabulary: Vocabulary
    /// Special tokens (e.g. `<|endoftext|>` = 50256), recognized only where a caller allows them.
    public let specialTokens: [String: TokenID]
    private let specialByID: [TokenID: [UInt8]]

    /// Pieces at least this long merge with the heap variant.
    static let heapThreshold = 128

    /// - Throws: `BPEError.invalidSpecialToken` if a special token's id is also an ordinary rank.
    public init(vocabulary: Vocabulary, specialTokens: [String: TokenID] = [:]) throws(BPEError) {
        var byID: [TokenID: [UInt8]] = [:]
        for (text, id) in specialTokens {
            guard Int(id) >= vocabulary.count else {
                throw BPEError(
                    .invalidSpecialToken,
                    "special token \"\(text)\" has id \(id), which is already an ordinary token (ranks 0 ..< \(vocabulary.count))"
                )
            }
            guard byID[id] == nil, !text.isEmpty else {
                throw BPEError(
                    .invalidSpecialToken, "special token \"\(text)\" is empty or shares id \(id) with another")
            }
            byID[id] = Array(text.utf8)
        }
        self.vocabulary = vocabulary
        self.specialTokens = specialTokens
        self.specialByID = byID
    }

    /// One past the largest id this encoder can produce.
    public var idUpperBound: Int {
        max(vocabulary.count, (specialByID.keys.max().map { Int($0) + 1 }) ?? 0)
    }

    // MARK: - Ordinary text

    /// Token ids of `text`, with special-token text encoded as ordinary text
    /// (tiktoken's `encode_ordinary`).
    public func encodeOrdinary(_ text: String) -> [TokenID] {
        var output: [TokenID] = []
        var copy = text
        copy.withUTF8 { bytes in
            unsafe encodeOrdinary(utf8: bytes, into: &output)
        }
        return output
    }

    /// Appends the ids of the UTF-8 bytes `text` to `output` (tiktoken's `encode_ordinary`).
    ///
    /// Invalid UTF-8 does not trap: each byte that does not start a well-formed sequence is
    /// pre-tokenized as a one-byte "other" character, so `decode` still gives the bytes back.
    /// A `cache` kept across calls on one thread makes repeated pieces cheap; the ids are the
    /// same with or without it.
    public func encodeOrdinary(
        utf8 text: UnsafeBufferPointer<UInt8>, into output: inout [TokenID], cache: PieceCache? = nil
    ) {
        output.reserveCapacity(output.count + text.count / 4 + 16)
        let vocabulary = self.vocabulary
        let byteTokens = vocabulary.byteTokens
        let lookup = vocabulary.lookup
        let classTables = ClassTables.shared
        // Ids go to a scratch buffer whose room is checked once per piece (a piece of n bytes
        // has at most n ids), then to `output` a block at a time: `Array.append` per id costs
        // a uniqueness check (a runtime call) and a capacity check each.
        var capacity = Self.scratchIDs
        var scratch = UnsafeMutablePointer<TokenID>.allocate(capacity: capacity)
        defer { unsafe scratch.deallocate() }
        var used = 0
        var pieces = unsafe Pieces(text, classTables)
        while let range = pieces.next() {
            let start = range.lowerBound
            let end = range.upperBound
            let length = end - start
            if used &+ length > capacity {
                unsafe output.append(contentsOf: UnsafeBufferPointer(start: scratch, count: used))
                used = 0
                if length > capacity {
                    unsafe scratch.deallocate()
                    capacity = length
                    unsafe scratch = UnsafeMutablePointer<TokenID>.allocate(capacity: capacity)
                }
            }
            let next = unsafe scratch + used
            if length == 1 {
                unsafe next.pointee = byteTokens[Int(unsafe text[start])]
                used &+= 1
            } else {
                let piece = unsafe UnsafeBufferPointer(rebasing: text[start..<end])
                let (key0, key1) = unsafe PieceKey.make(text, start, length)
                if let id = unsafe lookup.find(piece, prefix: key0) {
                    unsafe next.pointee = id
                    used &+= 1
                } else if let cache, length <= PieceKey.maxBytes {
                    var written = unsafe cache.copyIDs(key0, key1, length: length, to: next)
                    if written == 0 {
                        written = unsafe bytePairMerge(piece, into: next)
                        unsafe cache.store(
                            key0, key1, length: length, ids: UnsafeBufferPointer(start: next, count: written))
                    }
                    used &+= written
                } else {
                    used &+= unsafe bytePairMerge(piece, into: next)
                }
            }
        }
        unsafe output.append(contentsOf: UnsafeBufferPointer(start: scratch, count: used))
    }

    /// Ids buffered before they are appended to the caller's array (16 KiB).
    static let scratchIDs = 4096

    /// Appends the ids of `bytes` (UTF-8) to `output`.
    public func encodeOrdinary(utf8 bytes: [UInt8], into output: inout [TokenID], cache: PieceCache? = nil) {
        unsafe bytes.withUnsafeBufferPointer { unsafe encodeOrdinary(utf8: $0, into: &output, cache: cache) }
    }

    // MARK: - Special tokens

    /// Which special tokens `encode` may emit, and which must not appear in the text at all.
    public enum SpecialTokenPolicy: Sendable {
        /// tiktoken's default: every special token is disallowed, so its text is an error.
        case disallowAll
        /// The named special tokens become their ids; the others are disallowed.
        case allow(Set<String>)
        /// The named ones become their ids; every other special token is ordinary text
        /// (tiktoken's `disallowed_special=()`).
        case allowOnly(Set<String>)
    }

    /// Token ids of `text`, as tiktoken's `encode(text, allowed_special:, disallowed_special:)`.
    /// - Throws: `BPEError.disallowedSpecialToken` naming the token and its byte offset.
    public func encode(_ text: String, policy: SpecialTokenPolicy = .disallowAll) throws(BPEError) -> [TokenID] {
        let allowed: Set<String>
        let disallowed: Set<String>
        switch policy {
        case .disallowAll:
            allowed = []
            disallowed = Set(specialTokens.keys)
        case .allow(let names):
            allowed = names
            disallowed = Set(specialTokens.keys).subtracting(names)
        case .allowOnly(let names):
            allowed = names
            disallowed = []
        }
        for name in allowed where specialTokens[name] == nil {
            throw BPEError(.invalidSpecialToken, "\"\(name)\" is not a special token of this encoder")
        }
        let bytes = Array(text.utf8)
        if let hit = Self.firstMatch(of: disallowed, in: bytes, from: 0) {
            throw BPEError(
                .disallowedSpecialToken,
                "the text contains the special token \"\(hit.name)\" at byte \(hit.offset); allow it to encode it as id \(specialTokens[hit.name] ?? 0), or encode it as ordinary text"
            )
        }
        var output: [TokenID] = []
        var position = 0
        while let hit = Self.firstMatch(of: allowed, in: bytes, from: position) {
            unsafe bytes.withUnsafeBufferPointer { all in
                unsafe encodeOrdinary(utf8: UnsafeBufferPointer(rebasing: all[position..<hit.offset]), into: &output)
            }
            if let id = specialTokens[hit.name] { output.append(id) }
            position = hit.offset + hit.name.utf8.count
        }
        unsafe bytes.withUnsafeBufferPointer { all in
            unsafe encodeOrdinary(utf8: UnsafeBufferPointer(rebasing: all[position...]), into: &output)
        }
        return output
    }

    /// Leftmost occurrence of any of `names`; the longest wins at the same offset.
    static func firstMatch(of names: Set<String>, in bytes: [UInt8], from start: Int) -> (name: String, offset: Int)? {
        guard !names.isEmpty, start < bytes.count else { return nil }
        let candidates = names.map { ($0, Array($0.utf8)) }.sorted { $0.1.count > $1.1.count }
        var offset = start
        while offset < bytes.count {
            for (name, pattern) in candidates where bytes[offset] == pattern[0] {
                if offset + pattern.count <= bytes.count
                    && bytes[offset..<offset + pattern.count].elementsEqual(pattern)
                {
                    return (name, offset)
                }
            }
            offset += 1
        }
        return nil
    }

    // MARK: - Decoding

    /// The bytes of `ids` concatenated (tiktoken's `decode_bytes`).
    /// - Throws: `BPEError.unknownTokenID` naming the first id that is neither a rank nor special.
    public func decode(_ ids: some Sequence<TokenID>) throws(BPEError) -> [UInt8] {
        var output: [UInt8] = []
        for (index, id) in ids.enumerated() {
            if let bytes = vocabulary.bytes(of: id) {
                output.append(contentsOf: bytes)
            } else if let bytes = specialByID[id] {
                output.append(contentsOf: bytes)
            } else {
                throw BPEError(
                    .unknownTokenID,
                    "id \(id) at position \(index) is not a token (vocabulary has \(vocabulary.count) ranks and \(specialByID.count) special tokens)"
                )
            }
        }
        return output
    }

    // MARK: - Byte pair merging

    /// Writes the BPE encoding of `piece` (at least 2 bytes, not itself a token) to `output`,
    /// which has room for `piece.count` ids; returns how many it wrote.
    @usableFromInline
    func bytePairMerge(_ piece: UnsafeBufferPointer<UInt8>, into output: UnsafeMutablePointer<TokenID>) -> Int {
        if piece.count >= Self.heapThreshold {
            unsafe heapMerge(piece, into: output)
        } else {
            unsafe linearMerge(piece, into: output)
        }
    }

    /// BPE for short pieces: rescan the adjacent pairs for the lowest rank (leftmost on ties).
    func linearMerge(_ piece: UnsafeBufferPointer<UInt8>, into output: UnsafeMutablePointer<TokenID>) -> Int {
        let pairs = vocabulary.pairs
        let byteTokens = vocabulary.byteTokens
        return unsafe withUnsafeTemporaryAllocation(of: TokenID.self, capacity: piece.count) { parts in
            unsafe withUnsafeTemporaryAllocation(of: TokenID.self, capacity: piece.count) { ranks in
                var count = piece.count
                for index in 0..<count { unsafe parts[index] = byteTokens[Int(unsafe piece[index])] }
                for index in 0..<count - 1 {
                    unsafe ranks[index] = pairs.merged(unsafe parts[index], unsafe parts[index + 1])
                }
                unsafe ranks[count - 1] = .max
                while count > 1 {
                    var best = TokenID.max
                    var bestIndex = 0
                    for index in 0..<count - 1 where unsafe ranks[index] < best {
                        best = unsafe ranks[index]
                        bestIndex = index
                    }
                    if best == .max { break }
                    unsafe parts[bestIndex] = best
                    var index = bestIndex + 1
                    while index < count - 1 {
                        unsafe parts[index] = unsafe parts[index + 1]
                        unsafe ranks[index] = unsafe ranks[index + 1]
                        index += 1
                    }
                    count -= 1
                    unsafe ranks[count - 1] = .max
                    if bestIndex > 0 {
                        unsafe ranks[bestIndex - 1] = pairs.merged(unsafe parts[bestIndex - 1], unsafe parts[bestIndex])
                    }
                    if bestIndex < count - 1 {
                        unsafe ranks[bestIndex] = pairs.merged(unsafe parts[bestIndex], unsafe parts[bestIndex + 1])
                    }
                }
                for index in 0..<count { unsafe output[index] = parts[index] }
                return count
            }
        }
    }

    /// BPE for long pieces: parts as a linked list over byte positions, candidate merges in
    /// a min-heap ordered by (rank, position), so ties go to the leftmost as in tiktoken.
    ///
    /// All of it lives in three temporary buffers (28 bytes per piece byte): a dead position's
    /// token is `.max`, and the heap never holds more than 2 × count entries (each merge pops
    /// one and pushes at most two; at most count − 1 merges follow the count − 1 first pairs).
    func heapMerge(_ piece: UnsafeBufferPointer<UInt8>, into output: UnsafeMutablePointer<TokenID>) -> Int {
        let pairs = vocabulary.pairs
        let byteTokens = vocabulary.byteTokens
        let count = piece.count
        return unsafe withUnsafeTemporaryAllocation(of: TokenID.self, capacity: count) { tokens in
            unsafe withUnsafeTemporaryAllocation(of: Int32.self, capacity: 2 * count) { links in
                unsafe withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * count) { storage in
                    // links[i]: the next live position (count at the end); links[count + i]: the previous (-1).
                    for index in 0..<count {
                        unsafe tokens[index] = byteTokens[Int(unsafe piece[index])]
                        unsafe links[index] = Int32(index + 1)
                        unsafe links[count + index] = Int32(index - 1)
                    }
                    var heap = unsafe MergeHeap(storage: storage)
                    for index in 0..<count - 1 {
                        let rank = pairs.merged(unsafe tokens[index], unsafe tokens[index + 1])
                        if rank != .max { heap.push(UInt64(rank) << 32 | UInt64(index)) }
                    }
                    while let top = heap.popMin() {
                        let position = Int(top & 0xFFFF_FFFF)
                        let rank = TokenID(truncatingIfNeeded: top >> 32)
                        let left = unsafe tokens[position]
                        guard left != .max else { continue }
                        let right = Int(unsafe links[position])
                        guard right < count, pairs.merged(left, unsafe tokens[right]) == rank else { continue }
                        unsafe tokens[position] = rank
                        unsafe tokens[right] = .max
                        let after = unsafe links[right]
                        unsafe links[position] = after
                        if Int(after) != count { unsafe links[count + Int(after)] = Int32(position) }
                        let before = unsafe links[count + position]
                        if before >= 0 {
                            let merged = pairs.merged(unsafe tokens[Int(before)], rank)
                            if merged != .max { heap.push(UInt64(merged) << 32 | UInt64(before)) }
                        }
                        if Int(after) != count {
                            let merged = pairs.merged(rank, unsafe tokens[Int(after)])
                            if merged != .max { heap.push(UInt64(merged) << 32 | UInt64(position)) }
                        }
                    }
                    var position = 0
                    var written = 0
                    while position < count {
                        unsafe output[written] = tokens[position]
                        written += 1
                        position = Int(unsafe links[position])
                    }
                    return written
                }
            }
        }
    }
}

/// A binary min-heap of packed (rank << 32 | position) keys in a caller's buffer, which must
/// hold every entry pushed and not yet popped (`heapMerge` sizes it).
@safe
struct MergeHeap {
    private let items: UnsafeMutableBufferPointer<UInt64>
    private var count = 0

    init(storage: UnsafeMutableBufferPointer<UInt64>) { unsafe items = storage }

    mutating func push(_ value: UInt64) {
        var hole = count
        count += 1
        while hole > 0 {
            let parent = (hole - 1) / 2
            let above = unsafe items[parent]
            if above <= value { break }
            unsafe items[hole] = above
            hole = parent
        }
        unsafe items[hole] = value
    }

    /// Floyd's bottom-up deletion: the hole walks to a leaf along the smaller children (one
    /// branch-free compare a level), then the last entry rises from there — fewer compares and
    /// fewer mispredicted branches than sifting it down, where it nearly always ends low anyway.
    mutating func popMin() -> UInt64? {
        guard count > 0 else { return nil }
        let top = unsafe items[0]
        count -= 1
        guard count > 0 else { return top }
        let last = unsafe items[count]
        var hole = 0
        while true {
            let child = 2 * hole + 1
            if child + 1 < count {
                let smaller = unsafe child + (items[child + 1] < items[child] ? 1 : 0)
                unsafe items[hole] = items[smaller]
                hole = smaller
            } else {
                if child < count {
                    unsafe items[hole] = items[child]
                    hole = child
                }
                break
            }
        }
        while hole > 0 {
            let parent = (hole - 1) / 2
            let above = unsafe items[parent]
            if above <= last { break }
            unsafe items[hole] = above
            hole = parent
        }
        unsafe items[hole] = last
        return top
    }
}
