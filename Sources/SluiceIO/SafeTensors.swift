/// The safetensors format (an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data), so any safetensors
/// loader — Python's `safetensors`, `safetensors.torch.load_file` — reads what Sluice writes.
public enum SafeTensors {
    public enum DType: String, Sendable, CaseIterable {
        case float32 = "F32"
        case float16 = "F16"
        case bfloat16 = "BF16"
        case int32 = "I32"
        case int64 = "I64"

        public var byteCount: Int {
            switch self {
            case .float32, .int32: 4
            case .float16, .bfloat16: 2
            case .int64: 8
            }
        }
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var byteCount: Int { shape.reduce(1, *) * dtype.byteCount }

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// The header bytes (length prefix included) for tensors laid out back to back in order.
    /// The JSON is padded with spaces to a multiple of 8 bytes so the data stays aligned.
    public static func header(for tensors: [Tensor], metadata: [(String, String)] = []) -> [UInt8] {
        var members: [(key: String, value: JSONNode)] = []
        if !metadata.isEmpty {
            members.append(
                ("__metadata__", JSONNode(.object(metadata.map { ($0.0, JSONNode(.string(Array($0.1.utf8)))) }))))
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + tensor.byteCount
            members.append(
                (
                    tensor.name,
                    JSONNode(
                        .object([
                            ("dtype", JSONNode(.string(Array(tensor.dtype.rawValue.utf8)))),
                            ("shape", JSONNode(.array(tensor.shape.map { JSONNode(.integer(Int64($0))) }))),
                            (
                                "data_offsets",
                                JSONNode(.array([JSONNode(.integer(Int64(offset))), JSONNode(.integer(Int64(end)))]))
                            ),
                        ]))
                ))
            offset = end
        }
        var json = Array(JSONNode(.object(members)).serialized(pretty: false).utf8)
        while (json.count + 8) % 8 != 0 { json.append(0x20) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + json
    }

    /// Writes float32 tensors (row-major, in order) as one safetensors file, atomically, and
    /// returns the file's SHA-256 — how tables are stored, by `sluice tables` and by runs.
    public static func writeFloat32(
        _ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [(String, String)] = [], to path: String
    ) throws(IOError) -> String {
        let header = header(
            for: tensors.map { Tensor(name: $0.name, dtype: .float32, shape: $0.shape) }, metadata: metadata)
        let writer = try AtomicFileWriter(path: path)
        var hasher = SHA256Hasher()
        hasher.update(header)
        try writer.write(header)
        for tensor in tensors {
            precondition(
                tensor.values.count == tensor.shape.reduce(1, *), "tensor \(tensor.name): values do not fill its shape")
            let bytes = LittleEndian.bytes(of: tensor.values)
            hasher.update(bytes)
            try writer.write(bytes)
        }
        try writer.commit()
        return hasher.finalizeHex()
    }

    /// A parsed header: tensors with their byte ranges relative to the start of the data.
    public struct Layout: Sendable {
        public var tensors: [(tensor: Tensor, range: Range<Int>)]
        public var metadata: [String: String]
        /// Bytes before the data (length prefix + JSON).
        public var dataStart: Int
    }

    /// Parses the header at the start of `bytes`.
    /// - Throws: `IOError.malformedJSON` naming `path` and what is wrong.
    public static func layout(of bytes: [UInt8], path: String) throws(IOError) -> Layout {
        guard bytes.count >= 8 else { throw IOError(.truncated, path: path, "shorter than a safetensors header") }
        var length = 0
        for index in 0..<8 { length |= Int(bytes[index]) << (8 * index) }
        guard length <= bytes.count - 8, length < 100_000_000 else {
            throw IOError(
                .malformedJSON, path: path, offset: 0, "safetensors header length \(length) does not fit the file")
        }
        let node: JSONNode
        do {
            node = try JSONNode.parse(Array(bytes[8..<8 + length]))
        } catch {
            throw IOError(.malformedJSON, path: path, offset: 8, "safetensors header is not JSON: \(error)")
        }
        guard let members = node.members else {
            throw IOError(.malformedJSON, path: path, offset: 8, "safetensors header is not an object")
        }
        var tensors: [(tensor: Tensor, range: Range<Int>)] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                for (key, item) in value.members ?? [] { metadata[key] = item.string }
                continue
            }
            guard let dtype = value["dtype"]?.string.flatMap(DType.init(rawValue:)),
                case .array(let shapeNodes)? = value["shape"]?.value,
                case .array(let offsets)? = value["data_offsets"]?.value, offsets.count == 2,
                case .integer(let start) = offsets[0].value, case .integer(let end) = offsets[1].value
            else {
                throw IOError(
                    .malformedJSON, path: path, offset: 8,
                    "tensor \"\(name)\": dtype, shape or data_offsets missing or unsupported")
            }
            let shape = shapeNodes.compactMap { node -> Int? in
                if case .integer(let v) = node.value { Int(v) } else { nil }
            }
            let tensor = Tensor(name: name, dtype: dtype, shape: shape)
            guard start >= 0, end >= start, Int(end - start) == tensor.byteCount else {
                throw IOError(
                    .malformedJSON, path: path, offset: 8,
                    "tensor \"\(name)\": data_offsets do not match its shape and dtype")
            }
            tensors.append((tensor, Int(start)..<Int(end)))
        }
        return Layout(tensors: tensors, metadata: metadata, dataStart: 8 + length)
    }
}
