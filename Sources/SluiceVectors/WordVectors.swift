import Foundation

/// A set of pretrained word vectors: keys in file order and one row-major float32 matrix.
///
/// Memory is the matrix once, its norms, the keys' UTF-8 bytes in one buffer and an
/// open-addressing index of Int32 slots — no object per key, so GoogleNews' 3 M keys cost
/// about 60 MB beside the 3.6 GB matrix.
public struct WordVectors: Sendable {
    public let dim: Int
    /// Row-major, `count × dim`.
    public let matrix: [Float]
    /// `norms[i]` = numpy's `np.linalg.norm(V, axis=1)[i]`, bit for bit (the pairwise sum).
    public let norms: [Float]
    public let keys: KeyTable
    /// What the file was read as.
    public let format: VectorFormat
    /// Later occurrences of a key that were dropped (the first one wins, as in gensim).
    public let duplicatesDropped: Int

    public var count: Int { keys.count }

    public init(keys: KeyTable, dim: Int, matrix: [Float], format: VectorFormat, duplicatesDropped: Int = 0) {
        precondition(matrix.count == keys.count * dim, "the matrix does not have count × dim values")
        self.keys = keys
        self.dim = dim
        self.matrix = matrix
        self.format = format
        self.duplicatesDropped = duplicatesDropped
        var norms = [Float](repeating: 0, count: keys.count)
        matrix.withUnsafeBufferPointer { values in
            var squares = [Float](repeating: 0, count: dim)
            squares.withUnsafeMutableBufferPointer { squares in
                for row in 0..<keys.count {
                    let base = row * dim
                    for column in 0..<dim { squares[column] = values[base + column] * values[base + column] }
                    norms[row] = PairwiseSum.sum(UnsafeBufferPointer(squares)[...]).squareRoot()
                }
            }
        }
        self.norms = norms
    }

    /// Row `index` of the matrix.
    public func row(_ index: Int) -> ArraySlice<Float> { matrix[index * dim..<(index + 1) * dim] }

    /// `get_vector(key, norm=True)`: the row divided by its norm, rounded to float32.
    public func unitRow(_ index: Int) -> [Float] {
        let norm = norms[index]
        return row(index).map { $0 / norm }
    }

    /// The row index of `key`, if present (exact UTF-8 bytes: case- and normalisation-sensitive).
    public func index(of key: String) -> Int? { keys.index(of: key) }
}

/// Keys as one UTF-8 buffer with offsets, and a hash index over it.
public struct KeyTable: Sendable {
    private(set) var bytes: [UInt8] = []
    /// `starts[i]..<starts[i + 1]` are key i's bytes.
    private(set) var starts: [Int] = [0]
    /// Open addressing, linear probing; -1 is empty.
    private var slots: [Int32] = []
    private var mask = 0

    public var count: Int { starts.count - 1 }

    public init(capacity: Int = 0) {
        resizeIndex(for: max(capacity, 8))
    }

    /// Key `index` as a String.
    public subscript(index: Int) -> String {
        String(decoding: bytes[starts[index]..<starts[index + 1]], as: UTF8.self)
    }

    /// Every key as a String, in row order.
    public var strings: [String] { (0..<count).map { self[$0] } }

    /// Key `index`'s UTF-8 bytes.
    public func utf8(_ index: Int) -> ArraySlice<UInt8> { bytes[starts[index]..<starts[index + 1]] }

    public func index(of key: String) -> Int? {
        var key = key
        return key.withUTF8 { index(ofUTF8: $0) }
    }

    public func index(ofUTF8 key: UnsafeBufferPointer<UInt8>) -> Int? {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while true {
            let found = slots[slot]
            if found < 0 { return nil }
            if equals(Int(found), key) { return Int(found) }
            slot = (slot + 1) & mask
        }
    }

    /// Appends `key` unless present; returns whether it was new.
    public mutating func insert(_ key: UnsafeBufferPointer<UInt8>) -> Bool {
        if count * 2 >= slots.count { resizeIndex(for: count * 2 + 2) }
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        while slots[slot] >= 0 {
            if equals(Int(slots[slot]), key) { return false }
            slot = (slot + 1) & mask
        }
        slots[slot] = Int32(count)
        bytes.append(contentsOf: key)
        starts.append(bytes.count)
        return true
    }

    public mutating func insert(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { insert($0) }
    }

    private func equals(_ index: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = starts[index]
        let length = starts[index + 1] - start
        guard length == key.count else { return false }
        guard length > 0 else { return true }
        return bytes.withUnsafeBufferPointer { all in
            guard let stored = all.baseAddress, let wanted = key.baseAddress else { return false }
            return memcmp(stored + start, wanted, length) == 0
        }
    }

    private mutating func resizeIndex(for keys: Int) {
        var size = 16
        while size < keys * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        bytes.withUnsafeBufferPointer { all in
            for index in 0..<count {
                let key = UnsafeBufferPointer(rebasing: all[starts[index]..<starts[index + 1]])
                var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(index)
            }
        }
    }

    /// FNV-1a, then a final mix so that linear probing sees well-spread low bits.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return hash
    }
}

/// numpy's pairwise summation of a contiguous float32 array (`pairwise_sum` in
/// `loops_utils.h`): what `np.linalg.norm` and `np.sum` round like.
enum PairwiseSum {
    static func sum(_ a: Slice<UnsafeBufferPointer<Float>>) -> Float {
        let n = a.count
        let base = a.startIndex
        if n < 8 {
            var s: Float = 0
            for index in a.indices { s += a[index] }
            return s
        }
        if n <= 128 {
            // numpy's eight accumulators, as eight locals: the same adds in the same order.
            var (r0, r1, r2, r3) = (a[base], a[base + 1], a[base + 2], a[base + 3])
            var (r4, r5, r6, r7) = (a[base + 4], a[base + 5], a[base + 6], a[base + 7])
            var i = 8
            while i < n - n % 8 {
                let j = base + i
                r0 += a[j]
                r1 += a[j + 1]
                r2 += a[j + 2]
                r3 += a[j + 3]
                r4 += a[j + 4]
                r5 += a[j + 5]
                r6 += a[j + 6]
                r7 += a[j + 7]
                i += 8
            }
            var s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n {
                s += a[base + i]
                i += 1
            }
            return s
        }
        var m = n / 2
        m -= m % 8
        return sum(a[base..<base + m]) + sum(a[(base + m)...])
    }
}
