/// PyTorch's CPU generator: MT19937 seeded as `torch.manual_seed` seeds it, with the cached
/// normal value that `normal_` keeps between small tensors (shared/specs/torch-init.md §1, §4).
///
/// A value type: copying it forks the stream, which is how a plan can ask "where will the
/// generator be after the tables?" without drawing twice.
public struct TorchGenerator: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624
    /// The second Box–Muller value of the double-precision path, waiting for the next element.
    var cachedNormal: Double?

    /// `torch.manual_seed(seed)`: only the low 32 bits of the (two's-complement) seed count.
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for index in 1..<624 {
            let previous = state[index - 1]
            state[index] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(index)
        }
    }

    /// One tempered 32-bit output.
    public mutating func next32() -> UInt32 {
        if position >= 624 { twist() }
        var y = state[position]
        position += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// Two outputs, the first as the high word.
    public mutating func next64() -> UInt64 {
        let high = UInt64(next32())
        return high << 32 | UInt64(next32())
    }

    /// `torch.rand` for float32: the low 24 bits of one output, times 2^-24.
    public mutating func uniformFloat() -> Float {
        Float(next32() & 0x00FF_FFFF) * 0x1p-24
    }

    /// Uniform double in [0, 1): the low 53 bits of `next64()`, times 2^-53.
    public mutating func uniformDouble() -> Double {
        Double(next64() & ((1 << 53) - 1)) * 0x1p-53
    }

    private mutating func twist() {
        for index in 0..<624 {
            let y = (state[index] & 0x8000_0000) | (state[(index + 1) % 624] & 0x7FFF_FFFF)
            state[index] = state[(index + 397) % 624] ^ (y >> 1) ^ (y & 1 == 0 ? 0 : 0x9908_B0DF)
        }
        position = 0
    }

    /// Below this many items `randomPermutation` is exactly `torch.randperm` on CPU; PyTorch
    /// switches to another algorithm above it (not reproduced here).
    public static let torchExactPermutationLimit = 214_748_364

    /// A seeded permutation of `0 ..< count`: n − 1 draws, item i swapped with i + r mod (n − i).
    /// Exactly `torch.randperm(count)` below `torchExactPermutationLimit`; above it the same loop
    /// continues (64-bit draws once n − i needs them), deterministic but not PyTorch's order.
    public mutating func randomPermutation(_ count: Int) -> [Int] {
        var items = Array(0..<count)
        guard count > 1 else { return items }
        for index in 0..<(count - 1) {
            let remaining = count - index
            let offset =
                remaining <= Int(UInt32.max)
                ? Int(next32() % UInt32(remaining)) : Int(next64() % UInt64(remaining))
            items.swapAt(index, index + offset)
        }
        return items
    }

    /// The order of `DataLoader(shuffle=True, num_workers=0)`'s next epoch on this generator:
    /// one 64-bit draw when the iterator is created (its base seed), one more at the first
    /// batch whose low 63 bits seed a fresh generator for `randperm` (spec §6.3).
    public mutating func dataLoaderEpochOrder(sampleCount: Int) -> [Int] {
        _ = next64()
        let seed = next64() & 0x7FFF_FFFF_FFFF_FFFF
        var sampler = TorchGenerator(seed: seed)
        return sampler.randomPermutation(sampleCount)
    }
}
