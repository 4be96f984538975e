import SluiceIO

/// A `torch.manual_seed` value.
///
/// torch takes any integer from −2^63 to 2^64 − 1 and keeps its 64-bit two's complement:
/// `manual_seed(-5)` is `manual_seed(2**64 - 5)`, and `initial_seed()` then returns
/// 18446744073709551611. A seed is therefore its 64 bits, and both spellings give the same
/// tables, the same DataLoader order and the same validation split. The manifest records the
/// unsigned form, as `initial_seed()` prints it.
public struct Seed: Sendable, Hashable, CustomStringConvertible {
    public var bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    /// Decimal text, with an optional minus sign; nil outside −2^63…2^64 − 1 (torch's
    /// "Overflow when unpacking long long").
    public init?(_ text: String) {
        if let value = UInt64(text) {
            bits = value
        } else if let value = Int64(text) {
            bits = UInt64(bitPattern: value)
        } else {
            return nil
        }
    }

    /// A JSON integer in torch's range (JSON parses −2^63…2^63 − 1 as `.integer` and
    /// 2^63…2^64 − 1 as `.unsignedInteger`; anything larger is a `.number`).
    public init?(_ node: JSONNode) {
        switch node.value {
        case .integer(let value): bits = UInt64(bitPattern: value)
        case .unsignedInteger(let value): bits = value
        default: return nil
        }
    }

    public var description: String { String(bits) }

    /// How errors and docs state the range.
    public static let rangeText = "from -9223372036854775808 to 18446744073709551615 (torch.manual_seed's range)"
}
