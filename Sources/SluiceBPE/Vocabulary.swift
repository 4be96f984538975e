// Performance notes (release build, this machine, GPT-2 ranks):
// - Whole-piece lookups dominate encoding (tiktoken's observation holds: the vocabulary is the
//   cache). Slots keep the first 8 bytes packed in a UInt64 plus the length, so a token of up
//   to 8 bytes (92% of GPT-2's) is compared with two integer compares and no memcmp.
// - Merging works on token ids: a pair table keyed by the packed (left, right) ids gives the
//   id of their concatenation, so BPE never hashes byte strings.

/// A byte-level BPE vocabulary: token byte strings and their ranks (which are their ids).
///
/// Immutable once built, so one instance is shared by every thread of a process.
public final class Vocabulary: Sendable {
    /// Number of ordinary tokens; ranks are exactly `0 ..< count`.
    public let count: Int
    /// Token bytes of every rank, back to back; `tokenOffsets[r] ..< tokenOffsets[r + 1]`.
    let tokenBytes: [UInt8]
    let tokenOffsets: [UInt32]
    /// Rank of each single byte (byte-level BPE needs all 256).
    let byteTokens: [TokenID]
    let lookup: ByteStringTable
    let pairs: PairTable
    /// Length in bytes of the longest token.
    public let maxTokenByteCount: Int

    /// Builds a vocabulary from token byte strings indexed by rank.
    /// - Throws: `BPEError` if a token repeats or a single byte has no token.
    public convenience init(tokensByRank: [[UInt8]], source: String? = nil) throws(BPEError) {
        var bytes: [UInt8] = []
        var offsets: [UInt32] = [0]
        offsets.reserveCapacity(tokensByRank.count + 1)
        for token in tokensByRank {
            bytes.append(contentsOf: token)
            offsets.append(UInt32(bytes.count))
        }
        try self.init(tokenBytes: bytes, tokenOffsets: offsets, source: source)
    }

    /// Builds a vocabulary from the bytes of every rank back to back: rank r is
    /// `tokenBytes[tokenOffsets[r] ..< tokenOffsets[r + 1]]` (`tokenOffsets` starts at 0).
    init(tokenBytes bytes: [UInt8], tokenOffsets offsets: [UInt32], source: String?) throws(BPEError) {
        var longest = 0
        for rank in 0..<offsets.count - 1 { longest = max(longest, Int(offsets[rank + 1] - offsets[rank])) }
        self.count = offsets.count - 1
        self.tokenBytes = bytes
        self.tokenOffsets = offsets
        self.maxTokenByteCount = longest

        var duplicates: [(first: TokenID, second: TokenID)] = []
        let table = ByteStringTable(tokenBytes: bytes, tokenOffsets: offsets, duplicates: &duplicates)
        if let duplicate = duplicates.first {
            let token = Array(bytes[Int(offsets[Int(duplicate.second)])..<Int(offsets[Int(duplicate.second) + 1])])
            throw BPEError(
                .duplicateToken, file: source,
                "token \(Self.describe(token)) has two ranks, \(duplicate.first) and \(duplicate.second); each byte string needs one rank"
            )
        }
        self.lookup = table

        var byteTokens = [TokenID](repeating: 0, count: 256)
        for byte in 0..<256 {
            guard let rank = table.find([UInt8(byte)]) else {
                throw BPEError(
                    .missingByteToken, file: source,
                    "no token for the single byte 0x\(String(byte, radix: 16)); byte-level BPE needs all 256 bytes as tokens"
                )
            }
            byteTokens[byte] = rank
        }
        self.byteTokens = byteTokens
        self.pairs = PairTable(tokenBytes: bytes, tokenOffsets: offsets, lookup: table)
    }

    /// The bytes of token `id`, or nil if `id` is not an ordinary token.
    public func bytes(of id: TokenID) -> ArraySlice<UInt8>? {
        guard Int(id) < count else { return nil }
        return tokenBytes[Int(tokenOffsets[Int(id)])..<Int(tokenOffsets[Int(id) + 1])]
    }

    /// The rank of a byte string, if it is a token.
    public func rank(of bytes: some Collection<UInt8>) -> TokenID? {
        lookup.find(Array(bytes))
    }

    static func describe(_ token: [UInt8]) -> String {
        "0x" + token.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

// MARK: - Byte string → id

/// Open-addressing map from byte strings to ids, laid out for short keys.
///
/// Keys are not copied: the table indexes the vocabulary's flat token bytes by id, so a key
/// longer than 8 bytes is confirmed against those.
struct ByteStringTable: Sendable {
    struct Slot: Sendable {
        /// First 8 bytes, little-endian, zero-padded.
        var prefix: UInt64 = 0
        var length: UInt32 = 0
        /// id + 1; 0 marks an empty slot.
        var idPlusOne: UInt32 = 0
    }

    private var slots: [Slot]
    private let mask: Int
    private let shift: UInt64
    private let tokenBytes: [UInt8]
    private let tokenOffsets: [UInt32]

    /// Indexes every token of `tokenBytes`/`tokenOffsets` by its bytes; returns the pairs of
    /// ranks that share a byte string, which a valid vocabulary never has.
    init(tokenBytes: [UInt8], tokenOffsets: [UInt32], duplicates: inout [(first: TokenID, second: TokenID)]) {
        let count = tokenOffsets.count - 1
        var bits = 4
        while (1 << bits) < count * 2 { bits += 1 }
        slots = [Slot](repeating: Slot(), count: 1 << bits)
        mask = (1 << bits) - 1
        shift = UInt64(64 - bits)
        self.tokenBytes = tokenBytes
        self.tokenOffsets = tokenOffsets
        unsafe tokenBytes.withUnsafeBufferPointer { all in
            for rank in 0..<count {
                let key = unsafe UnsafeBufferPointer(
                    rebasing: all[Int(tokenOffsets[rank])..<Int(tokenOffsets[rank + 1])])
                if let existing = unsafe find(key) {
                    duplicates.append((existing, TokenID(rank)))
                    continue
                }
                let prefix = unsafe Self.prefix(of: key)
                var index = unsafe Int(truncatingIfNeeded: Self.hash(prefix: prefix, key: key) >> shift)
                while slots[index].idPlusOne != 0 { index = (index &+ 1) & mask }
                slots[index] = Slot(prefix: prefix, length: UInt32(key.count), idPlusOne: TokenID(rank) &+ 1)
            }
        }
    }

    /// The first 8 bytes of `key`, little-endian, zero-padded: `PieceKey`'s first word.
    @inline(__always)
    static func prefix(of key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        unsafe PieceKey.word(key, 0, key.count)
    }

    @inline(__always)
    static func hash(prefix: UInt64, key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = (prefix ^ (UInt64(key.count) &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
        if key.count > 8 {
            var i = 8
            while i < key.count {
                h = (h ^ UInt64(unsafe key[i])) &* 0x94D0_49BB_1331_11EB
                i &+= 1
            }
        }
        return h ^ (h >> 31)
    }

    func find(_ key: [UInt8]) -> TokenID? {
        unsafe key.withUnsafeBufferPointer { unsafe find($0) }
    }

    /// The id of `key`, if present. Keys longer than 8 bytes are confirmed byte by byte.
    @inline(__always)
    func find(_ key: UnsafeBufferPointer<UInt8>) -> TokenID? {
        unsafe find(key, prefix: Self.prefix(of: key))
    }

    /// `find(key)` when the caller already has `prefix(of: key)` (`PieceKey`'s first word).
    @inline(__always)
    func find(_ key: UnsafeBufferPointer<UInt8>, prefix: UInt64) -> TokenID? {
        var index = unsafe Int(truncatingIfNeeded: Self.hash(prefix: prefix, key: key) >> shift)
        let length = UInt32(key.count)
        while true {
            let slot = slots[index]
            if slot.idPlusOne == 0 { return nil }
            if slot.prefix == prefix && slot.length == length {
                let id = slot.idPlusOne &- 1
                if unsafe length <= 8 || tailMatches(id: id, key: key) { return id }
            }
            index = (index &+ 1) & mask
        }
    }

    private func tailMatches(id: TokenID, key: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = Int(tokenOffsets[Int(id)])
        var i = 8
        while i < key.count {
            if unsafe tokenBytes[start + i] != key[i] { return false }
            i += 1
        }
        return true
    }
}

// MARK: - (left id, right id) → merged id

/// Every way to write a token as the concatenation of two tokens, keyed by the packed pair.
///
/// tiktoken merges two adjacent parts when their concatenated bytes are a token; the parts
/// are always tokens themselves, so listing every (prefix token, suffix token) split of every
/// token gives exactly the same merges without hashing bytes in the loop.
@safe
final class PairTable: @unchecked Sendable {
    // Invariant: `slots` holds `mask + 1` initialized slots, allocated by init and freed only
    // by deinit; nothing writes them after init, so threads share the table freely.
    /// One entry: the pair and its merged token in 12 bytes, so a probe reads one cache line
    /// (separate key and value arrays cost two misses per hit; the table is larger than L2).
    struct Slot {
        var left: TokenID
        var right: TokenID
        var merged: TokenID
    }

    private let slots: UnsafeMutablePointer<Slot>
    private let shift: UInt64
    private let mask: Int
    /// `left` of an empty slot: no token has this id.
    static let empty = TokenID.max

    /// Every worker process builds this once per vocabulary load, so the splits are looked up
    /// in place in the flat token bytes, with no array per split (GPT-2: 108,299 entries).
    init(tokenBytes: [UInt8], tokenOffsets: [UInt32], lookup: ByteStringTable) {
        var entries: [(left: TokenID, right: TokenID, merged: TokenID)] = []
        entries.reserveCapacity(tokenOffsets.count * 3)
        unsafe tokenBytes.withUnsafeBufferPointer { all in
            for rank in 0..<tokenOffsets.count - 1 {
                let start = Int(tokenOffsets[rank])
                let end = Int(tokenOffsets[rank + 1])
                guard end - start >= 2 else { continue }
                for split in start + 1..<end {
                    guard let left = unsafe lookup.find(UnsafeBufferPointer(rebasing: all[start..<split])),
                        let right = unsafe lookup.find(UnsafeBufferPointer(rebasing: all[split..<end]))
                    else { continue }
                    entries.append((left, right, TokenID(rank)))
                }
            }
        }
        var bits = 4
        while (1 << bits) < entries.count * 2 { bits += 1 }
        shift = UInt64(64 - bits)
        mask = (1 << bits) - 1
        unsafe slots = UnsafeMutablePointer<Slot>.allocate(capacity: 1 << bits)
        unsafe slots.initialize(repeating: Slot(left: Self.empty, right: 0, merged: 0), count: 1 << bits)
        for entry in entries {
            var index = Self.home(entry.left, entry.right, shift)
            while unsafe slots[index].left != Self.empty
                && !(unsafe slots[index].left == entry.left && slots[index].right == entry.right)
            {
                index = (index &+ 1) & mask
            }
            unsafe slots[index] = Slot(left: entry.left, right: entry.right, merged: entry.merged)
        }
    }

    deinit {
        unsafe slots.deallocate()
    }

    @inline(__always)
    private static func home(_ left: TokenID, _ right: TokenID, _ shift: UInt64) -> Int {
        let key = UInt64(left) << 32 | UInt64(right)
        return Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The token whose bytes are `left`'s followed by `right`'s, or `TokenID.max`.
    @inline(__always)
    func merged(_ left: TokenID, _ right: TokenID) -> TokenID {
        var index = Self.home(left, right, shift)
        while true {
            let slot = unsafe slots[index]
            if slot.left == left && slot.right == right { return slot.merged }
            if slot.left == Self.empty { return .max }
            index = (index &+ 1) & mask
        }
    }
}
