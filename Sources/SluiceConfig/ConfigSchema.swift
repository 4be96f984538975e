import SluiceIO

/// `sluice config schema`: a JSON Schema (draft 2020-12) generated from `ConfigSpec`, so the
/// schema and the decoder cannot drift apart. Rules that span keys are not expressible in
/// it and are listed in the schema's top-level description.
public enum ConfigSchema {
    public static func document() -> JSONNode {
        var root = schema(for: .object(ConfigSpec.root))
        if case .object(var members) = root.value {
            members.insert(
                ("$schema", JSONNode(.string(Array("https://json-schema.org/draft/2020-12/schema".utf8)))), at: 0)
            members.insert(("title", JSONNode(.string(Array("Sluice pipeline config, format 1".utf8)))), at: 1)
            members.insert(
                ("description", JSONNode(.string(Array(crossFieldRules.utf8)))), at: 2)
            root = JSONNode(.object(members))
        }
        return root
    }

    static let crossFieldRules = """
        Also checked by sluice, not expressible here: tokenizer needs exactly one of vocab, train and words; with train, \
        the special token ids are the last vocab_size ids, and merges is not allowed; with words, special_tokens is left out \
        and document_separator is "<|endoftext|>", "<|unk|>" or null; \
        tokenizer.document_separator must be a key of tokenizer.special_tokens; special token ids must be distinct; window needs tokenizer; embedding needs \
        window; embedding.context_length must be at least window.max_length; init "pretrained" needs embedding.pretrained or \
        embedding.vectors (not both); embedding.vectors needs tokenizer.words.
        """

    static func string(_ text: String) -> JSONNode { JSONNode(.string(Array(text.utf8))) }

    static func schema(for type: ConfigType) -> JSONNode {
        switch type {
        case .string:
            return JSONNode(.object([("type", string("string"))]))
        case .integer(let minimum, let maximum):
            var members: [(key: String, value: JSONNode)] = [("type", string("integer"))]
            if let minimum { members.append(("minimum", JSONNode(.integer(minimum)))) }
            if let maximum { members.append(("maximum", JSONNode(.integer(maximum)))) }
            return JSONNode(.object(members))
        case .seed:
            return JSONNode(
                .object([
                    ("type", string("integer")), ("minimum", JSONNode(.integer(Int64.min))),
                    ("maximum", JSONNode(.unsignedInteger(UInt64.max))),
                ]))
        case .fraction:
            return JSONNode(
                .object([
                    ("type", string("number")), ("minimum", JSONNode(.integer(0))), ("maximum", JSONNode(.integer(1))),
                ]))
        case .boolean:
            return JSONNode(.object([("type", string("boolean"))]))
        case .enumeration(let values):
            return JSONNode(.object([("enum", JSONNode(.array(values.map(string))))]))
        case .array(let element, let minItems):
            return JSONNode(
                .object([
                    ("type", string("array")), ("items", schema(for: element)),
                    ("minItems", JSONNode(.integer(Int64(minItems)))),
                ]))
        case .object(let fields):
            var properties: [(key: String, value: JSONNode)] = []
            for field in fields {
                var property = schema(for: field.type)
                if case .object(var members) = property.value {
                    members.append(("description", string(field.summary)))
                    if let defaultValue = field.defaultValue { members.append(("default", JSONNode(defaultValue))) }
                    property = JSONNode(.object(members))
                }
                properties.append((field.name, property))
            }
            let required = fields.filter { $0.defaultValue == nil }.map { string($0.name) }
            var members: [(key: String, value: JSONNode)] = [
                ("type", string("object")), ("properties", JSONNode(.object(properties))),
                ("additionalProperties", JSONNode(.bool(false))),
            ]
            if !required.isEmpty { members.append(("required", JSONNode(.array(required)))) }
            return JSONNode(.object(members))
        case .stringMap(let element):
            return JSONNode(.object([("type", string("object")), ("additionalProperties", schema(for: element))]))
        case .nullable(let inner):
            return JSONNode(
                .object([
                    ("anyOf", JSONNode(.array([schema(for: inner), JSONNode(.object([("type", string("null"))]))])))
                ]))
        case .anyOf(let types):
            return JSONNode(.object([("anyOf", JSONNode(.array(types.map(schema(for:)))))]))
        }
    }
}
