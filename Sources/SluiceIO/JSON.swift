// Performance notes (JSONL ingest of the 111.6 MB benchmark corpus as JSON Lines, release):
// encoding \u escapes by hand instead of through String/Character, and copying runs of plain
// string bytes at once, took the whole ingest from 0.76 s to 0.59 s (with memchr line
// splitting in IngestReader; parsing over one UnsafeBufferPointer: 0.57 s). Python's C json.loads
// alone reads the file in 0.36 s; the rest of ingest (UTF-8 policy, LZ4 part, SHA-256) is shared.

/// A parsed JSON value that remembers where it was written, so that errors about a config
/// key or a JSONL field can name the line and column.
///
/// Strings keep their raw UTF-8 bytes (escapes decoded): a JSONL document with invalid UTF-8
/// reaches the ingest text policy unchanged instead of being silently repaired here.
public struct JSONNode: Sendable, Equatable {
    public indirect enum Value: Sendable, Equatable {
        case null
        case bool(Bool)
        case integer(Int64)
        /// An integer literal above Int64.max and at most UInt64.max, kept exact: torch seeds go
        /// up to 2^64 − 1 (`torch.initial_seed()` prints them so). Other keys refuse it as too large.
        case unsignedInteger(UInt64)
        case number(Double)
        case string([UInt8])
        case array([JSONNode])
        /// Members in the order written; keys are unique (duplicates are a parse error).
        case object([(key: String, value: JSONNode)])

        public static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.null, .null): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.integer(let a), .integer(let b)): return a == b
            case (.unsignedInteger(let a), .unsignedInteger(let b)): return a == b
            case (.number(let a), .number(let b)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.array(let a), .array(let b)): return a == b
            case (.object(let a), .object(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: return false
            }
        }
    }

    public var value: Value
    /// 1-based line and column (in bytes) of the value's first character.
    public var line: Int
    public var column: Int
    /// For an object member's value: where its key was written (for "unknown key" errors).
    public var keyLine = 0
    public var keyColumn = 0

    /// Equal when the values are; where they were written does not matter.
    public static func == (lhs: JSONNode, rhs: JSONNode) -> Bool { lhs.value == rhs.value }

    public init(_ value: Value, line: Int = 0, column: Int = 0) {
        self.value = value
        self.line = line
        self.column = column
    }

    /// The value, if this is an integer that fits an Int.
    public var integer: Int? {
        if case .integer(let number) = value { Int(exactly: number) } else { nil }
    }

    /// The value, if this is true or false.
    public var bool: Bool? {
        if case .bool(let flag) = value { flag } else { nil }
    }

    public var string: String? {
        if case .string(let bytes) = value { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    public var members: [(key: String, value: JSONNode)]? {
        if case .object(let members) = value { return members }
        return nil
    }

    /// The member named exactly `key` (bytes compared: NFC and NFD spellings are different keys).
    public subscript(key: String) -> JSONNode? {
        members?.first { $0.key.utf8.elementsEqual(key.utf8) }?.value
    }

    /// "string", "integer", "number", … — how errors name a value's type.
    public var typeName: String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .integer, .unsignedInteger: "integer"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

// MARK: - Parsing

/// A JSON syntax error with its position.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public var description: String { "line \(line), column \(column): \(message)" }
}

extension JSONNode {
    /// Parses one JSON document (RFC 8259, strictly: no comments, trailing commas, NaN or
    /// duplicate keys). Lone surrogate escapes become U+FFFD and are counted.
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONNode {
        try parseCountingRepairs(bytes[...]).0
    }

    /// Like `parse`, also returning how many lone surrogate escapes were replaced by U+FFFD.
    public static func parseCountingRepairs(_ bytes: ArraySlice<UInt8>) throws(JSONSyntaxError) -> (JSONNode, Int) {
        let (node, surrogates, _) = try parseData(bytes, duplicateKeys: .reject)
        return (node, surrogates)
    }

    /// What a repeated key in an object means.
    public enum DuplicateKeys: Sendable {
        /// A syntax error (configs: a repeated key is a mistake).
        case reject
        /// The last value wins, in the first key's place — what Python's `json` does (data).
        case keepLast
    }

    /// Parses data: also returns the lone surrogates replaced and the duplicate keys resolved.
    public static func parseData(_ bytes: ArraySlice<UInt8>, duplicateKeys: DuplicateKeys) throws(JSONSyntaxError)
        -> (node: JSONNode, surrogates: Int, duplicates: Int)
    {
        let outcome = bytes.withUnsafeBufferPointer { buffer -> Result<(JSONNode, Int, Int), JSONSyntaxError> in
            var parser = JSONParser(bytes: buffer)
            parser.keepLastDuplicate = duplicateKeys == .keepLast
            do throws(JSONSyntaxError) {
                let node = try parser.parseDocument()
                return .success((node, parser.repairedSurrogates, parser.duplicateKeys))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}

/// Parses over a buffer that the caller keeps alive for the whole parse (the entry points
/// above hold it in `withUnsafeBufferPointer`); nothing the parser returns points into it.
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var line = 1
    var lineStart = 0
    var depth = 0
    var repairedSurrogates = 0
    var keepLastDuplicate = false
    var duplicateKeys = 0
    static let maximumDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var column: Int { index - lineStart + 1 }

    func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(line: line, column: column, message: message)
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONNode {
        skipWhitespace()
        let node = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw error("unexpected \(describeNext()) after the JSON value") }
        return node
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            default: return
            }
        }
    }

    func describeNext() -> String {
        guard index < bytes.count else { return "end of input" }
        let byte = bytes[index]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    mutating func parseValue() throws(JSONSyntaxError) -> JSONNode {
        guard index < bytes.count else { throw error("expected a value, got end of input") }
        let (startLine, startColumn) = (line, column)
        func node(_ value: JSONNode.Value) -> JSONNode { JSONNode(value, line: startLine, column: startColumn) }
        switch bytes[index] {
        case UInt8(ascii: "{"): return node(try parseObject())
        case UInt8(ascii: "["): return node(try parseArray())
        case UInt8(ascii: "\""): return node(.string(try parseString()))
        case UInt8(ascii: "t"): try expectLiteral("true"); return node(.bool(true))
        case UInt8(ascii: "f"): try expectLiteral("false"); return node(.bool(false))
        case UInt8(ascii: "n"): try expectLiteral("null"); return node(.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return node(try parseNumber())
        default: throw error("expected a value, got \(describeNext())")
        }
    }

    mutating func expectLiteral(_ literal: String) throws(JSONSyntaxError) {
        let expected = Array(literal.utf8)
        guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected)
        else {
            throw error("expected \(literal)")
        }
        index += expected.count
    }

    mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nesting deeper than \(Self.maximumDepth) levels") }
    }

    mutating func parseObject() throws(JSONSyntaxError) -> JSONNode.Value {
        try enter()
        defer { depth -= 1 }
        index += 1
        var members: [(key: String, value: JSONNode)] = []
        var seen: [[UInt8]: Int] = [:]  // key bytes → index in members
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a quoted key, got \(describeNext())")
            }
            let (keyLine, keyColumn) = (line, column)
            let keyBytes = try parseString()
            let key = String(decoding: keyBytes, as: UTF8.self)
            let earlier = seen[keyBytes]
            if earlier != nil && !keepLastDuplicate {
                throw JSONSyntaxError(line: keyLine, column: keyColumn, message: "duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after key \"\(key)\", got \(describeNext())")
            }
            index += 1
            skipWhitespace()
            var value = try parseValue()
            (value.keyLine, value.keyColumn) = (keyLine, keyColumn)
            if let earlier {
                duplicateKeys += 1
                members[earlier].value = value
            } else {
                seen[keyBytes] = members.count
                members.append((key, value))
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated object: expected ',' or '}'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") { throw error("trailing comma before '}'") }
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            throw error("expected ',' or '}', got \(describeNext())")
        }
    }

    mutating func parseArray() throws(JSONSyntaxError) -> JSONNode.Value {
        try enter()
        defer { depth -= 1 }
        index += 1
        var items: [JSONNode] = []
        skipWhitespace()
        if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array: expected ',' or ']'") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") { throw error("trailing comma before ']'") }
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw error("expected ',' or ']', got \(describeNext())")
        }
    }

    mutating func parseString() throws(JSONSyntaxError) -> [UInt8] {
        index += 1
        var result: [UInt8] = []
        while true {
            // Copy the run of plain bytes up to the next quote, backslash or control byte at once.
            let runStart = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x22 || byte == 0x5C || byte < 0x20 { break }
                index += 1
            }
            result.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
            guard index < bytes.count else { throw error("unterminated string") }
            let byte = bytes[index]
            if byte == 0x22 {
                index += 1
                return result
            }
            if byte < 0x20 {
                throw error("control character 0x\(String(byte, radix: 16)) inside a string must be escaped")
            }
            try parseEscape(into: &result)
        }
    }

    mutating func parseEscape(into result: inout [UInt8]) throws(JSONSyntaxError) {
        index += 1
        guard index < bytes.count else { throw error("unterminated escape") }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""): result.append(0x22)
        case UInt8(ascii: "\\"): result.append(0x5C)
        case UInt8(ascii: "/"): result.append(0x2F)
        case UInt8(ascii: "b"): result.append(0x08)
        case UInt8(ascii: "f"): result.append(0x0C)
        case UInt8(ascii: "n"): result.append(0x0A)
        case UInt8(ascii: "r"): result.append(0x0D)
        case UInt8(ascii: "t"): result.append(0x09)
        case UInt8(ascii: "u"):
            var value = try parseHex4()
            if (0xD800...0xDBFF).contains(value) {
                if index + 1 < bytes.count && bytes[index] == UInt8(ascii: "\\")
                    && bytes[index + 1] == UInt8(ascii: "u")
                {
                    let save = index
                    index += 2
                    let low = try parseHex4()
                    if (0xDC00...0xDFFF).contains(low) {
                        value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        index = save
                        value = 0xFFFD
                        repairedSurrogates += 1
                    }
                } else {
                    value = 0xFFFD
                    repairedSurrogates += 1
                }
            } else if (0xDC00...0xDFFF).contains(value) {
                value = 0xFFFD
                repairedSurrogates += 1
            }
            Self.appendUTF8(value, to: &result)
        default:
            index -= 1
            throw error("invalid escape \\\(describeNext())")
        }
    }

    /// Appends the UTF-8 encoding of scalar `value` (surrogates were replaced before this).
    @inline(__always)
    static func appendUTF8(_ value: UInt32, to bytes: inout [UInt8]) {
        switch value {
        case 0..<0x80:
            bytes.append(UInt8(value))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | value >> 6))
            bytes.append(UInt8(0x80 | value & 0x3F))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | value >> 12))
            bytes.append(UInt8(0x80 | (value >> 6) & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        default:
            bytes.append(UInt8(0xF0 | value >> 18))
            bytes.append(UInt8(0x80 | (value >> 12) & 0x3F))
            bytes.append(UInt8(0x80 | (value >> 6) & 0x3F))
            bytes.append(UInt8(0x80 | value & 0x3F))
        }
    }

    mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("\\u needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("\\u needs four hex digits, got \(describeNext())")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONNode.Value {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits() -> Int {
            let begin = index
            while index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - begin
        }
        let integerStart = index
        let integerDigits = digits()
        guard integerDigits > 0 else { throw error("expected digits in number") }
        if integerDigits > 1 && bytes[integerStart] == UInt8(ascii: "0") {
            throw error("leading zeros are not allowed in numbers")
        }
        var isInteger = true
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            isInteger = false
            guard digits() > 0 else { throw error("expected digits after the decimal point") }
        }
        if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            isInteger = false
            if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) {
                index += 1
            }
            guard digits() > 0 else { throw error("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let value = Int64(text) { return .integer(value) }
        if isInteger, let value = UInt64(text) { return .unsignedInteger(value) }
        guard let value = Double(text), value.isFinite else { throw error("number \(text) is out of range") }
        return .number(value)
    }
}

// MARK: - Writing

extension JSONNode {
    /// Serializes deterministically: members in stored order, 2-space indentation when
    /// `pretty`, shortest round-trip doubles, non-ASCII written as UTF-8.
    public func serialized(pretty: Bool = true) -> String {
        String(decoding: serializedBytes(pretty: pretty), as: UTF8.self)
    }

    /// `serialized` as UTF-8 bytes, written straight into one buffer (plan and input lists run
    /// to 10⁵–10⁶ strings; this is several times faster than building a String).
    public func serializedBytes(pretty: Bool = true) -> [UInt8] {
        var output: [UInt8] = []
        write(to: &output, indent: 0, pretty: pretty)
        return output
    }

    private func write(to output: inout [UInt8], indent: Int, pretty: Bool) {
        func pad(_ depth: Int) {
            guard pretty else { return }
            output.append(0x0A)
            output.append(contentsOf: repeatElement(0x20, count: 2 * depth))
        }
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let value): output += Array((value ? "true" : "false").utf8)
        case .integer(let value): output += Array(String(value).utf8)
        case .unsignedInteger(let value): output += Array(String(value).utf8)
        case .number(let value):
            output += Array(
                (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) + ".0" : "\(value)").utf8)
        case .string(let bytes): Self.appendQuoted(bytes, to: &output)
        case .array(let items):
            if items.isEmpty {
                output += Array("[]".utf8)
                return
            }
            output.append(0x5B)
            for (offset, item) in items.enumerated() {
                pad(indent + 1)
                item.write(to: &output, indent: indent + 1, pretty: pretty)
                if offset != items.count - 1 { output.append(0x2C) }
            }
            pad(indent)
            output.append(0x5D)
        case .object(let members):
            if members.isEmpty {
                output += Array("{}".utf8)
                return
            }
            output.append(0x7B)
            for (offset, member) in members.enumerated() {
                pad(indent + 1)
                Self.appendQuoted(Array(member.key.utf8), to: &output)
                output += pretty ? [0x3A, 0x20] : [0x3A]
                member.value.write(to: &output, indent: indent + 1, pretty: pretty)
                if offset != members.count - 1 { output.append(0x2C) }
            }
            pad(indent)
            output.append(0x7D)
        }
    }

    /// Appends `bytes` (UTF-8) as a JSON string literal, escaped as `quoted` does.
    static func appendQuoted(_ bytes: [UInt8], to output: inout [UInt8]) {
        if !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0xE2 }) {
            output.append(0x22)
            output += bytes
            output.append(0x22)
            return
        }
        output += Array(quoted(String(decoding: bytes, as: UTF8.self)).utf8)
    }

    public static func quoted(_ text: String) -> String {
        // Most strings (paths, names, hashes) need no escape at all.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0xE2 }) {
            return "\"" + text + "\""
        }
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
