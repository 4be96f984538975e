#if canImport(Glibc)
    import Glibc
#endif

// Performance notes: the float32 paths do scalar IEEE operations in exactly the order the
// spec lists, with FMAs only where PyTorch's compiled kernel has them (`addingProduct` is a
// single-rounding fma). Swift does not contract a*b+c on its own, at any optimization level.

/// Which of PyTorch's two CPU kernels for `normal_` to reproduce (shared/specs/torch-init.md §3).
public enum TorchKernel: String, Sendable, CaseIterable {
    /// The AVX2 kernel every modern x86-64 runs: pure IEEE float arithmetic, portable.
    case avx2
    /// The scalar kernel (`ATEN_CPU_CAPABILITY=default`): glibc's `logf`, `sinf`, `cosf`.
    case scalar = "default"
}

extension TorchGenerator {
    /// `count` N(0, 1) samples as `nn.Embedding` / `normal_` draws them, advancing the generator
    /// exactly as PyTorch does (`count` draws, or `count + 16` when `count % 16 != 0`).
    public mutating func normalFloats(count: Int, kernel: TorchKernel = .avx2) -> [Float] {
        guard count >= 16 else { return smallNormals(count: count) }
        var values = [Float](repeating: 0, count: count)
        for index in 0..<count { values[index] = uniformFloat() }
        var start = 0
        while start + 16 <= count {
            Self.transformBlock(&values, at: start, kernel: kernel)
            start += 16
        }
        if count % 16 != 0 {
            for index in (count - 16)..<count { values[index] = uniformFloat() }
            Self.transformBlock(&values, at: count - 16, kernel: kernel)
        }
        return values
    }

    /// Fewer than 16 elements: the double-precision path with its cached second value.
    private mutating func smallNormals(count: Int) -> [Float] {
        var values: [Float] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            let value: Double
            if let cached = cachedNormal {
                value = cached
                cachedNormal = nil
            } else {
                let u1 = uniformDouble()
                let u2 = uniformDouble()
                let radius = (-2 * log1p(-u2)).squareRoot()
                let theta = 2 * Double.pi * u1
                cachedNormal = radius * sin(theta)
                value = radius * cos(theta)
            }
            values.append(Float(value * 1 + 0))
        }
        return values
    }

    /// Box–Muller on one 16-block: pairs (j, j + 8); the first half feeds the radius.
    static func transformBlock(_ values: inout [Float], at start: Int, kernel: TorchKernel) {
        for j in 0..<8 {
            let a = values[start + j]
            let c = values[start + 8 + j]
            let (cosine, sine): (Float, Float)
            switch kernel {
            case .avx2: (cosine, sine) = avx2Pair(a, c)
            case .scalar: (cosine, sine) = scalarPair(a, c)
            }
            values[start + j] = cosine + 0
            values[start + 8 + j] = sine + 0
        }
    }

    /// Path B: glibc's float libm, the angle formed in double.
    static func scalarPair(_ a: Float, _ c: Float) -> (Float, Float) {
        let radius = (-2 * logf(1 - a)).squareRoot()
        let theta = Float(6.283185307179586 * Double(c))
        return (radius * cosf(theta), radius * sinf(theta))
    }

    /// Path A: the AVX2 kernel's Cephes-style log, sin and cos, operation for operation.
    static func avx2Pair(_ a: Float, _ c: Float) -> (Float, Float) {
        let radius = avx2Radius(a)
        let (sine, cosine) = avx2SinCos(Float(bitPattern: 0x40C9_0FDB) * c)
        return (radius * cosine, radius * sine)
    }

    static func avx2Radius(_ a: Float) -> Float {
        let w = 1 - a
        let bits = w.bitPattern
        var e = Float(Int32(bits >> 23) - 127) + 1
        let m = Float(bitPattern: (bits & 0x807F_FFFF) | 0x3F00_0000)
        var t: Float = 0
        if m < Float(bitPattern: 0x3F35_04F3) {
            e = e - 1
            t = m
        }
        var x = (m - 1) + t
        let z = x * x
        var y = Float(bitPattern: 0x3D90_21BB)
        for constant: UInt32 in [
            0xBDEB_D1B8, 0x3DEF_251A, 0xBDFE_5D4F, 0x3E11_E9BF, 0xBE2A_AE50, 0x3E4C_CEAC, 0xBE7F_FFFC, 0x3EAA_AAAA,
        ] {
            y = Float(bitPattern: constant).addingProduct(y, x)
        }
        y = y * x
        y = (e * Float(bitPattern: 0xB95E_8083)).addingProduct(y, z)
        y = y - z * 0.5
        x = x + y
        let logarithm = x.addingProduct(e, Float(bitPattern: 0x3F31_8000))
        return (logarithm * -2).squareRoot()
    }

    static func avx2SinCos(_ theta: Float) -> (sine: Float, cosine: Float) {
        var j = Int32(theta * Float(bitPattern: 0x3FA2_F983))
        j = (j &+ 1) & ~1
        let yj = Float(j)
        var x = theta.addingProduct(yj, Float(bitPattern: 0xBF49_0000))
        x = x.addingProduct(yj, Float(bitPattern: 0xB97D_A000))
        x = x.addingProduct(yj, Float(bitPattern: 0xB322_2169))
        let z = x * x
        var pc = Float(bitPattern: 0xBAB6_061A).addingProduct(Float(bitPattern: 0x37CC_F5CE), z)
        pc = Float(bitPattern: 0x3D2A_AAA5).addingProduct(pc, z)
        pc = pc * z
        pc = (-(z * 0.5)).addingProduct(pc, z)
        pc = pc + 1
        var ps = Float(bitPattern: 0x3C08_839E).addingProduct(Float(bitPattern: 0xB94C_A1F9), z)
        ps = Float(bitPattern: 0xBE2A_AAA3).addingProduct(ps, z)
        ps = ps * z
        ps = x.addingProduct(ps, x)
        var sine = (j & 2 == 0 ? ps : pc) + 0
        var cosine = (j & 2 == 0 ? pc : ps) + 0
        if j & 4 != 0 { sine = -sine }
        if (j &- 2) & 4 == 0 { cosine = -cosine }
        return (sine, cosine)
    }
}
