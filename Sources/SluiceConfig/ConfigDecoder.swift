import SluiceIO

/// Checks a parsed config against `ConfigSpec` and fills in every default.
///
/// Strict: an unknown key, a wrong type or an out-of-range value is an issue naming its JSON
/// path, line and column, and for unknown keys the closest valid key. All issues are
/// collected, so one run of `sluice config check` shows every mistake.
struct ConfigDecoder {
    var issues: [ConfigIssue] = []

    mutating func resolve(_ node: JSONNode, as type: ConfigType, path: String) -> JSONNode {
        switch type {
        case .string:
            if case .string = node.value { return node }
            report(node, path, "expected a string, got \(describe(node))")
        case .integer(let minimum, let maximum):
            guard case .integer(let value) = node.value else {
                report(node, path, "expected an integer\(rangeText(minimum, maximum)), got \(describe(node))")
                return node
            }
            if let minimum, value < minimum {
                report(node, path, "expected an integer\(rangeText(minimum, maximum)), got \(value)")
            } else if let maximum, value > maximum {
                report(node, path, "expected an integer\(rangeText(minimum, maximum)), got \(value)")
            }
        case .seed:
            if Seed(node) == nil { report(node, path, "expected an integer \(Seed.rangeText), got \(describe(node))") }
        case .fraction:
            let value: Double?
            switch node.value {
            case .integer(let number): value = Double(number)
            case .number(let number): value = number
            default: value = nil
            }
            guard let value, value >= 0, value <= 1 else {
                report(node, path, "expected a number from 0 to 1, got \(describe(node))")
                return node
            }
        case .boolean:
            if case .bool = node.value { return node }
            report(node, path, "expected true or false, got \(describe(node))")
        case .enumeration(let values):
            guard let text = node.string, values.contains(text) else {
                let list = values.map { "\"\($0)\"" }.joined(separator: ", ")
                var message = "expected one of \(list), got \(describe(node))"
                if let text = node.string, let near = Self.closest(to: text, in: values) {
                    message += " — did you mean \"\(near)\"?"
                }
                report(node, path, message)
                return node
            }
        case .array(let element, let minItems):
            guard case .array(let items) = node.value else {
                report(node, path, "expected an array, got \(describe(node))")
                return node
            }
            if items.count < minItems {
                report(node, path, "expected at least \(minItems) item(s), got \(items.count)")
            }
            let resolved = items.enumerated().map { resolve($1, as: element, path: "\(path)[\($0)]") }
            return JSONNode(.array(resolved), line: node.line, column: node.column)
        case .object(let fields):
            guard let members = node.members else {
                report(node, path, "expected an object, got \(describe(node))")
                return node
            }
            return resolveObject(node, members: members, fields: fields, path: path)
        case .stringMap(let element):
            guard let members = node.members else {
                report(node, path, "expected an object, got \(describe(node))")
                return node
            }
            let resolved = members.map { ($0.key, resolve($0.value, as: element, path: join(path, $0.key))) }
            return JSONNode(.object(resolved), line: node.line, column: node.column)
        case .nullable(let inner):
            if case .null = node.value { return node }
            return resolve(node, as: inner, path: path)
        case .anyOf(let types):
            for candidate in types {
                var trial = ConfigDecoder()
                let resolved = trial.resolve(node, as: candidate, path: path)
                if trial.issues.isEmpty { return resolved }
            }
            report(
                node, path,
                "expected \(types.map(Self.typeDescription).joined(separator: " or ")), got \(describe(node))")
        }
        return node
    }

    mutating func resolveObject(
        _ node: JSONNode, members: [(key: String, value: JSONNode)], fields: [ConfigField], path: String
    ) -> JSONNode {
        let names = fields.map(\.name)
        for member in members where !names.contains(member.key) {
            var message = "unknown key \"\(member.key)\"\(path.isEmpty ? "" : " in \"\(path)\"")"
            if let near = Self.closest(to: member.key, in: names) {
                message += " — did you mean \"\(near)\"?"
            } else {
                message += "; valid keys: \(names.joined(separator: ", "))"
            }
            var keyNode = member.value
            if keyNode.keyLine > 0 { (keyNode.line, keyNode.column) = (keyNode.keyLine, keyNode.keyColumn) }
            report(keyNode, join(path, member.key), message)
        }
        var resolved: [(key: String, value: JSONNode)] = []
        for field in fields {
            if let given = node[field.name] {
                resolved.append((field.name, resolve(given, as: field.type, path: join(path, field.name))))
            } else if let defaultValue = field.defaultValue {
                resolved.append(
                    (field.name, resolve(JSONNode(defaultValue), as: field.type, path: join(path, field.name))))
            } else {
                report(node, join(path, field.name), "required key is missing (\(field.summary))")
            }
        }
        return JSONNode(.object(resolved), line: node.line, column: node.column)
    }

    mutating func report(_ node: JSONNode, _ path: String, _ message: String) {
        issues.append(
            ConfigIssue(
                path: path, line: node.line > 0 ? node.line : nil, column: node.line > 0 ? node.column : nil,
                message: message))
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func describe(_ node: JSONNode) -> String {
        switch node.value {
        case .string: return JSONNode.quoted(node.string ?? "")
        case .integer(let value): return String(value)
        case .unsignedInteger(let value): return String(value)
        case .number(let value): return "\(value)"
        case .bool(let value): return String(value)
        default: return node.typeName
        }
    }

    func rangeText(_ minimum: Int64?, _ maximum: Int64?) -> String {
        switch (minimum, maximum) {
        case (let low?, let high?) where low == high: return " equal to \(low)"
        case (let low?, let high?) where high < (Int64(1) << 50): return " from \(low) to \(high)"
        case (let low?, _): return " ≥ \(low)"
        case (nil, let high?): return " ≤ \(high)"
        default: return ""
        }
    }

    static func typeDescription(_ type: ConfigType) -> String {
        switch type {
        case .string: "a string"
        case .integer, .seed: "an integer"
        case .fraction: "a number from 0 to 1"
        case .boolean: "true or false"
        case .enumeration(let values): values.map { "\"\($0)\"" }.joined(separator: " or ")
        case .array: "an array"
        case .object, .stringMap: "an object"
        case .nullable(let inner): typeDescription(inner) + " or null"
        case .anyOf(let types): types.map(typeDescription).joined(separator: " or ")
        }
    }

    /// The candidate nearest to `word` by edit distance, if it is plausibly a typo.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        let limit = max(2, word.count / 3)
        return best.1 <= limit ? best.0 : nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
