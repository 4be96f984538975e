import Foundation

/// Python's `float(str)`: its grammar (underscores between digits, `inf`/`infinity`/`nan` in any
/// case, no hex, surrounding whitespace) to the correctly rounded double. gensim parses text
/// vectors this way and then rounds to float32 — two roundings, which `strtof` would not give.
enum PythonFloat {
    static func parse(_ field: ArraySlice<UInt8>) -> Double? {
        Array(field).withUnsafeBufferPointer { parse($0) }
    }

    static func parse(_ field: UnsafeBufferPointer<UInt8>) -> Double? {
        var start = 0
        var end = field.count
        while start < end && isSpace(field[start]) { start += 1 }
        while end > start && isSpace(field[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        var index = start
        var negative = false
        if field[index] == UInt8(ascii: "+") || field[index] == UInt8(ascii: "-") {
            negative = field[index] == UInt8(ascii: "-")
            index += 1
        }
        if index < end, !isDigit(field[index]), field[index] != UInt8(ascii: ".") {
            let word = String(decoding: field[index..<end], as: UTF8.self).lowercased()
            switch word {
            case "inf", "infinity": return negative ? -.infinity : .infinity
            case "nan": return negative ? -.nan : .nan
            default: return nil
            }
        }
        // Validate: digitpart ["." [digitpart]] | "." digitpart, then [e [sign] digitpart],
        // copying it without underscores into a NUL-terminated buffer for strtod.
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: end - start + 2) { buffer in
            var digits = CharBuffer(buffer)
            return parseDigits(field, index: index, end: end, negative: negative, into: &digits)
        }
    }

    /// A fixed buffer appended to in order.
    struct CharBuffer {
        let storage: UnsafeMutableBufferPointer<CChar>
        var count = 0
        init(_ storage: UnsafeMutableBufferPointer<CChar>) { self.storage = storage }
        @inline(__always) mutating func append(_ char: CChar) {
            storage[count] = char
            count += 1
        }
    }

    static func parseDigits(
        _ field: UnsafeBufferPointer<UInt8>, index start: Int, end: Int, negative: Bool, into digits: inout CharBuffer
    ) -> Double? {
        var index = start
        if negative { digits.append(CChar(UInt8(ascii: "-"))) }
        /// Consumes `digit (["_"] digit)*`; false if there is none or an underscore is misplaced.
        func digitPart() -> Bool {
            guard index < end, isDigit(field[index]) else { return false }
            while index < end {
                let byte = field[index]
                if isDigit(byte) {
                    digits.append(CChar(byte))
                    index += 1
                } else if byte == UInt8(ascii: "_"), index + 1 < end, isDigit(field[index + 1]) {
                    index += 1
                } else {
                    break
                }
            }
            return true
        }
        let integer = digitPart()
        var fraction = false
        if index < end && field[index] == UInt8(ascii: ".") {
            digits.append(CChar(UInt8(ascii: ".")))
            index += 1
            fraction = digitPart()
        }
        guard integer || fraction else { return nil }
        if index < end && (field[index] | 0x20) == UInt8(ascii: "e") {
            digits.append(CChar(UInt8(ascii: "e")))
            index += 1
            if index < end && (field[index] == UInt8(ascii: "+") || field[index] == UInt8(ascii: "-")) {
                digits.append(CChar(field[index]))
                index += 1
            }
            guard digitPart() else { return nil }
        }
        guard index == end else { return nil }
        digits.append(0)
        guard let text = digits.storage.baseAddress else { return nil }
        return strtod(text, nil)
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (byte >= 0x09 && byte <= 0x0D) }
}
