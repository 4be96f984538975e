#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Performance notes (release build, this machine, GPT-2 ranks, the benchmark corpus):
// - About a third of pre-tokenizer pieces are not tokens themselves and need merging; merging
//   probes the pair table (several MiB) once per pair and dominated the encode profile. The
//   same few thousand words recur across documents, so remembering each merged piece's ids
//   turns most merges into one probe of a table that stays in cache.
// - An entry is one 64-byte cache line holding the key bytes and up to 11 ids inline, so a
//   hit costs two integer compares and one line. Measured on the benchmark corpus (1 thread,
//   4.04 M probes): 32-byte entries with at most 3 ids hit 72 % (75 % even with 1 M slots:
//   pieces of 4+ ids never fit); 64-byte entries with up to 11 ids hit 87 % with 2^15 slots
//   (2 MiB), 89 % with 2^16 (4 MiB, the default: one thread encoded the corpus about 8 %
//   faster than with 2 MiB, best of 5 passes in 4 paired rounds) and 90.5 % with 2^17 (8 MiB).

/// Remembers the ids of short pieces that needed merging, so a piece seen before costs one
/// probe instead of a merge.
///
/// Bounded: a fixed table of `slotCount` entries (64 bytes each) allocated once; a new piece
/// replaces whatever held its slot. Results never depend on it: an entry is the exact output of
/// the merge for its bytes, so encoding with a cold, warm, small or large cache gives the same
/// ids. One cache belongs to one thread at a time (it is not `Sendable`); a thread keeps one
/// across documents, which is where the hits come from.
@safe
public final class PieceCache {
    // Invariant: `storage` is allocated (inside `block`) and zeroed for `slotCount` entries by
    // init and freed only by deinit; `entry(...)` is always one of them (the hash's top bits pick the slot).
    // A zeroed entry has length 0, which no looked-up piece has, so it never matches.
    // `counters` (probes, hits) is allocated by init and freed only by deinit too.
    /// Pieces that merge into more ids than this are not cached.
    static let maxIDs = 11
    /// One entry: key words at 0 and 8, shape (length | id count << 8) at 16, ids from 20.
    static let entryBytes = 64

    private let storage: UnsafeMutableRawPointer
    /// What calloc returned (`storage` is its first 64-byte boundary), for free.
    private let block: UnsafeMutableRawPointer
    private let shift: UInt64
    /// How many entries this cache holds.
    public let slotCount: Int
    /// Probes and hits since creation, for measuring the hit rate. Kept behind a pointer:
    /// a class's stored `var` is checked for exclusive access at run time on every update.
    private let counters: UnsafeMutablePointer<Int>
    public var lookups: Int { unsafe counters[0] }
    public var hits: Int { unsafe counters[1] }

    /// - Parameter slotBits: log2 of the entry count; the default, 16, is 4 MiB.
    public init(slotBits: Int = 16) {
        let bits = min(max(slotBits, 4), 24)
        slotCount = 1 << bits
        shift = UInt64(64 - bits)
        // calloc: the pages of a large block come from the kernel already zeroed and are
        // mapped when first touched, so a short task does not pay to clear (and hold) 4 MiB.
        // 64 spare bytes let the entries start on a cache line (malloc aligns to 16).
        let byteCount = (1 << bits) * Self.entryBytes
        guard let block = unsafe calloc(byteCount + Self.entryBytes, 1) else {
            fatalError("PieceCache: out of memory allocating \(byteCount) bytes")
        }
        unsafe self.block = block
        unsafe storage = block.alignedUp(toMultipleOf: Self.entryBytes)
        unsafe counters = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        unsafe counters.initialize(repeating: 0, count: 2)
    }

    deinit {
        unsafe free(block)
        unsafe counters.deallocate()
    }

    @inline(__always)
    private func entry(_ key0: UInt64, _ key1: UInt64, _ length: Int) -> UnsafeMutableRawPointer {
        let mixed = (key0 ^ (key1 &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(length)) &* 0xBF58_476D_1CE4_E5B9
        return unsafe storage + Int(truncatingIfNeeded: mixed >> shift) &* Self.entryBytes
    }

    /// Copies the cached ids of the piece with these key bytes (see `PieceKey`) to
    /// `destination`, which has room for `length` ids; returns how many, 0 if not cached.
    @inline(__always)
    func copyIDs(_ key0: UInt64, _ key1: UInt64, length: Int, to destination: UnsafeMutablePointer<TokenID>) -> Int {
        unsafe counters[0] &+= 1
        let entry = unsafe entry(key0, key1, length)
        let shape = unsafe entry.load(fromByteOffset: 16, as: UInt32.self)
        guard unsafe entry.load(as: UInt64.self) == key0, unsafe entry.load(fromByteOffset: 8, as: UInt64.self) == key1,
            Int(shape & 0xFF) == length
        else { return 0 }
        unsafe counters[1] &+= 1
        let count = Int(shape >> 8)
        // At most 11 ids: a loop the compiler keeps inline, not a call to memmove.
        let ids = unsafe UnsafeRawPointer(entry + 20)
        var index = 0
        while index < count {
            unsafe destination[index] = ids.load(fromByteOffset: index &* 4, as: TokenID.self)
            index &+= 1
        }
        return count
    }

    /// Remembers `ids` for the piece with these key bytes, if they fit an entry.
    @inline(__always)
    func store(_ key0: UInt64, _ key1: UInt64, length: Int, ids: UnsafeBufferPointer<TokenID>) {
        guard ids.count <= Self.maxIDs, !ids.isEmpty, let base = ids.baseAddress else { return }
        let entry = unsafe entry(key0, key1, length)
        unsafe entry.storeBytes(of: key0, as: UInt64.self)
        unsafe entry.storeBytes(of: key1, toByteOffset: 8, as: UInt64.self)
        unsafe entry.storeBytes(of: UInt32(length) | UInt32(ids.count) << 8, toByteOffset: 16, as: UInt32.self)
        unsafe (entry + 20).copyMemory(from: base, byteCount: ids.count &* 4)
    }
}

/// The first 16 bytes of a piece as two little-endian words, zero-padded: for a piece of at most
/// `maxBytes` bytes, the key of `PieceCache`; for any piece, in its first word, the prefix
/// `ByteStringTable` compares.
enum PieceKey {
    /// Longer pieces are not cached: their two words do not hold all their bytes.
    static let maxBytes = 16

    @inline(__always)
    static func mask(_ byteCount: Int) -> UInt64 {
        byteCount >= 8 ? ~0 : (UInt64(1) << UInt64(byteCount &* 8)) &- 1
    }

    /// Words of `text[start ..< start + length]`. Reads whole words when 16 bytes remain in
    /// `text`, else byte by byte.
    @inline(__always)
    static func make(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ length: Int) -> (UInt64, UInt64) {
        if start &+ 16 <= text.count, let base = text.baseAddress {
            let raw = unsafe UnsafeRawPointer(base + start)
            let word0 = UInt64(littleEndian: unsafe raw.loadUnaligned(as: UInt64.self))
            let word1 = UInt64(littleEndian: unsafe raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if length <= 8 { return (word0 & mask(length), 0) }
            return (word0, word1 & mask(length &- 8))
        }
        return unsafe (word(text, start, length), length > 8 ? word(text, start &+ 8, length &- 8) : 0)
    }

    /// `text[start ..< start + min(count, 8)]` as one little-endian word, zero-padded: one load
    /// when 8 bytes are there, else byte by byte (never reading past `text`).
    @inline(__always)
    static func word(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> UInt64 {
        guard let base = text.baseAddress else { return 0 }
        if count >= 8 {
            return UInt64(littleEndian: unsafe UnsafeRawPointer(base + start).loadUnaligned(as: UInt64.self))
        }
        var word: UInt64 = 0
        var index = count
        while index > 0 {
            index &-= 1
            word = word << 8 | UInt64(unsafe base[start &+ index])
        }
        return word
    }
}
