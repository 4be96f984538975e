/// Raw little-endian bytes of numeric arrays, the byte order of every Sluice tensor file.
public enum LittleEndian {
    public static func bytes(of values: [Float]) -> [UInt8] {
        #if _endian(little)
            return values.withUnsafeBytes { Array($0) }
        #else
            return values.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        #endif
    }

    public static func bytes(of values: [Int32]) -> [UInt8] {
        #if _endian(little)
            return values.withUnsafeBytes { Array($0) }
        #else
            return values.flatMap { value in withUnsafeBytes(of: value.littleEndian, Array.init) }
        #endif
    }

    public static func floats(_ bytes: ArraySlice<UInt8>) -> [Float] {
        stride(from: bytes.startIndex, to: bytes.endIndex, by: 4).map { index in
            Float(
                bitPattern: UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                    | UInt32(bytes[index + 3]) << 24)
        }
    }
}
