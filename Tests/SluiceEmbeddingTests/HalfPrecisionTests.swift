import SluiceEmbedding
import Testing

/// References: float16 — the hardware conversion (x86 F16C `vcvtps2ph`, IEEE round-to-nearest-
/// even, which is what PyTorch's CPU `.to(float16)` computes for every non-NaN input); bfloat16 —
/// the IEEE rule applied with integer arithmetic on the float's bits, checked here on values
/// whose rounding is known from the binary representation (ties, carries into the exponent).
@Suite("float16 and bfloat16 conversion")
struct HalfPrecisionTests {
    @Test("float16 equals IEEE round-to-nearest-even on every float32 exponent and tie pattern")
    func float16MatchesHardware() {
        var checked = 0
        // Every exponent, with mantissas around the rounding boundaries and random ones.
        var state: UInt32 = 1
        for exponent in UInt32(0)...255 {
            for low in [0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7F_E000, 0x7F_F000, 0x7F_FFFF]
                as [UInt32]
            {
                for sign in [UInt32(0), 0x8000_0000] {
                    let value = Float(bitPattern: sign | exponent << 23 | low)
                    guard !value.isNaN else { continue }
                    #expect(
                        HalfPrecision.float16Bits(value) == Float16(value).bitPattern,
                        "\(value) bits \(String(value.bitPattern, radix: 16))")
                    checked += 1
                }
            }
            for _ in 0..<200 {
                state = state &* 1_664_525 &+ 1_013_904_223
                let value = Float(bitPattern: exponent << 23 | (state & 0x7F_FFFF))
                guard !value.isNaN else { continue }
                #expect(HalfPrecision.float16Bits(value) == Float16(value).bitPattern, "\(value)")
                checked += 1
            }
        }
        #expect(checked > 50_000)
    }

    @Test("float16 NaN keeps its sign as c10 does; infinities and overflow go to ±inf")
    func float16Specials() {
        #expect(HalfPrecision.float16Bits(.nan) == 0x7E00)
        #expect(HalfPrecision.float16Bits(-Float.nan) == 0xFE00)
        // Overflow edges against the hardware conversion: 65520 is halfway to 2^16 (ties to even: inf).
        for value: Float in [.infinity, -.infinity, 65520, 65519.996, 65504, -65520, 1e10] {
            #expect(HalfPrecision.float16Bits(value) == Float16(value).bitPattern, "\(value)")
        }
        #expect(HalfPrecision.float16Bits(65520) == Float16.infinity.bitPattern)
    }

    @Test("bfloat16: ties to even, carries, infinities, NaN")
    func bfloat16() {
        #expect(HalfPrecision.bfloat16Bits(1) == 0x3F80)
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even stays
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, odd rounds up
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3FFF_FFFF)) == 0x4000)  // carry into the exponent
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)  // max float rounds to inf
        #expect(HalfPrecision.bfloat16Bits(-.infinity) == 0xFF80)
        #expect(HalfPrecision.bfloat16Bits(.nan) == 0x7FC0)
        #expect(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x0000_8000)) == 0x0000)  // subnormal tie to even
    }
}
