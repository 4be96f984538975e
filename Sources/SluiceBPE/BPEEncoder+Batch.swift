import Dispatch

extension BPEEncoder {
    /// Encodes many documents on `threadCount` threads; result `i` belongs to `documents[i]`.
    ///
    /// Documents are split into `threadCount` contiguous runs of about equal byte count, so
    /// the result never depends on the thread count or on timing.
    public func encodeOrdinaryBatch(_ documents: [[UInt8]], threadCount: Int) -> [[TokenID]] {
        let ranges = Self.balancedRanges(byteCounts: documents.map(\.count), parts: max(1, threadCount))
        let results = ResultSlots<[TokenID]>(count: documents.count)
        DispatchQueue.concurrentPerform(iterations: ranges.count) { part in
            let cache = PieceCache()
            for index in ranges[part] {
                var ids: [TokenID] = []
                encodeOrdinary(utf8: documents[index], into: &ids, cache: cache)
                results.store(ids, at: index)
            }
        }
        return results.values()
    }

    /// Splits `0 ..< byteCounts.count` into at most `parts` contiguous ranges of similar total size.
    static func balancedRanges(byteCounts: [Int], parts: Int) -> [Range<Int>] {
        let total = byteCounts.reduce(0, +)
        var ranges: [Range<Int>] = []
        var start = 0
        var accumulated = 0
        for (index, count) in byteCounts.enumerated() {
            accumulated += count
            let boundary = total * (ranges.count + 1) / parts
            if accumulated >= boundary && ranges.count < parts - 1 {
                ranges.append(start..<index + 1)
                start = index + 1
            }
        }
        ranges.append(start..<byteCounts.count)
        return ranges.filter { !$0.isEmpty }
    }
}

/// Write-once slots filled from concurrent iterations.
@safe
final class ResultSlots<Value>: @unchecked Sendable {
    // Invariant: each index is written by exactly one iteration, and `values()` is read only
    // after `concurrentPerform` has returned, which orders every write before the read. The
    // storage is a fixed allocation, not an Array, so concurrent writes to distinct indices
    // never touch shared bookkeeping.
    private let storage: UnsafeMutableBufferPointer<Value?>

    init(count: Int) {
        unsafe storage = UnsafeMutableBufferPointer<Value?>.allocate(capacity: count)
        unsafe storage.initialize(repeating: nil)
    }

    deinit {
        unsafe storage.deinitialize()
        unsafe storage.deallocate()
    }

    func store(_ value: Value, at index: Int) {
        unsafe precondition(index >= 0 && index < storage.count, "slot index out of range")
        unsafe storage[index] = value
    }

    func values() -> [Value] {
        let values = unsafe storage.compactMap { $0 }
        unsafe precondition(values.count == storage.count, "a concurrent iteration did not store its result")
        return values
    }
}
