import SluiceIO

/// File and member names as the bytes they are. Two names are the same only when their bytes
/// are: NFC "café" and NFD "café" are different files (`String ==` would equate them).
public enum PathBytes {
    public static func of(_ cString: UnsafePointer<CChar>) -> [UInt8] {
        var bytes: [UInt8] = []
        var pointer = cString
        while pointer.pointee != 0 {
            bytes.append(UInt8(bitPattern: pointer.pointee))
            pointer += 1
        }
        return bytes
    }

    /// Whether the name is valid UTF-8 (and so can be a `String` without loss).
    public static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    /// The name for messages: itself when valid UTF-8, else each invalid byte as `\xNN`.
    public static func display(_ bytes: [UInt8]) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var output = ""
        var index = 0
        while index < bytes.count {
            var end = index
            // The longest valid run from here.
            while end < bytes.count {
                let byte = bytes[end]
                if byte < 0x80 {
                    end += 1
                    continue
                }
                guard let (length, low, high) = UTF8Repair.sequenceShape(lead: byte), end + length <= bytes.count,
                    bytes[end + 1] >= low && bytes[end + 1] <= high,
                    bytes[end + 2..<end + length].allSatisfy({ $0 & 0xC0 == 0x80 })
                else { break }
                end += length
            }
            if end > index { output += String(decoding: bytes[index..<end], as: UTF8.self) }
            if end < bytes.count {
                output += "\\x" + String(bytes[end], radix: 16, uppercase: true).leftPadded(to: 2)
                end += 1
            }
            index = end
        }
        return output
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
