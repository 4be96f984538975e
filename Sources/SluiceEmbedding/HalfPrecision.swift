/// float32 → float16 / bfloat16 exactly as PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)`
/// do on CPU: round to nearest, ties to even, overflow to ±inf, subnormals kept; NaN becomes
/// the quiet NaN with the sign kept (float16: sign | 0x7E00, c10's fp16_ieee_from_fp32_value)
/// or the canonical 0x7FC0 (bfloat16, c10's round_to_nearest_even).
public enum HalfPrecision {
    /// IEEE binary16 bits of `value`, computed without relying on hardware conversion.
    /// Inlinable: it runs once per embedding element, inside materialize's row loop.
    @inlinable
    public static func float16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude > 0x7F80_0000 { return sign | 0x7E00 }  // NaN
        if magnitude >= 0x4780_0000 { return sign | 0x7C00 }  // ≥ 2^16 or inf; [65520, 2^16) rounds up below
        if magnitude < 0x3880_0000 {
            // Result is subnormal or zero: scale to units of 2^-24 and round half to even.
            if magnitude < 0x3300_0000 { return sign }  // < 2^-25: rounds to zero (2^-25 exactly ties to 0)
            let exponent = Int(magnitude >> 23)
            let mantissa = (magnitude & 0x007F_FFFF) | 0x0080_0000
            // value = mantissa × 2^(exponent − 150); in units of 2^-24 that is mantissa >> (126 − exponent).
            let shift = UInt32(126 - exponent)
            let shifted = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let half = UInt32(1) << (shift - 1)
            var result = shifted
            if remainder > half || (remainder == half && shifted & 1 == 1) { result += 1 }
            return sign | UInt16(result)
        }
        // Normal range: rebias the exponent (127 → 15) and round the 13 dropped bits.
        // Branch-free round half to even of the 13 dropped bits (a data-dependent branch here
        // mispredicts on half of all values): add 0xFFF plus the kept lowest bit, then shift.
        let rebased = magnitude - 0x3800_0000  // subtract (127 - 15) << 23
        let result = (rebased + 0x0FFF + ((rebased >> 13) & 1)) >> 13
        return sign | UInt16(min(result, 0x7C00))
    }

    /// bfloat16 bits of `value` (the top 16 bits, rounded to nearest even).
    @inlinable
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        if value.isNaN { return 0x7FC0 }
        let bits = value.bitPattern
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
