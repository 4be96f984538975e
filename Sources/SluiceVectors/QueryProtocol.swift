import SluiceIO

/// `sluice vectors query`: one JSON query a line, `{"id": …, "op": OP, "args": {…}}` with
/// gensim's method names and argument names, answered one line each, in order, as
/// `{"id": …, "result": …}` or `{"id": …, "error": {"type": …, "message": …}}`.
public struct VectorQueryProtocol: Sendable {
    public let vectors: WordVectors
    /// The `limit` the vectors were loaded with (what `load_summary` checks its `limit` against).
    public let loadedLimit: Int?

    public init(vectors: WordVectors, loadedLimit: Int?) {
        self.vectors = vectors
        self.loadedLimit = loadedLimit
    }

    /// The operations, with the arguments each reads.
    public static let operations: [(op: String, args: String)] = [
        ("most_similar", "positive, negative, topn=10, restrict_vocab, clip_start, clip_end"),
        ("most_similar_cosmul", "positive, negative, topn=10 (restrict_vocab accepted and ignored, as gensim)"),
        ("similar_by_word", "word, topn=10, restrict_vocab"),
        ("similar_by_vector", "vector, topn=10, restrict_vocab"),
        ("similarity", "w1, w2"), ("distance", "w1, w2"), ("n_similarity", "ws1, ws2"),
        ("doesnt_match", "words"), ("closer_than", "key1, key2"), ("rank", "key1, key2"),
        ("contains", "key"), ("vector", "key"), ("unit_vector", "key"), ("norm", "key"),
        ("load_summary", "limit"),
    ]

    /// The answer line (no newline) for one query line; `lineNumber` names it when the line
    /// itself is not a query.
    public func answer(_ line: ArraySlice<UInt8>, lineNumber: Int) -> [UInt8] {
        var output: [UInt8] = []
        let node: JSONNode
        do {
            node = try JSONNode.parse(Array(line))
        } catch {
            Self.error(
                id: nil, .valueError, "line \(lineNumber): not JSON (\(error)); send one JSON object a line",
                to: &output)
            return output
        }
        let id = node["id"]
        guard let op = node["op"]?.string else {
            Self.error(
                id: id, .valueError,
                "line \(lineNumber): no \"op\"; one of \(Self.operations.map(\.op).joined(separator: ", "))",
                to: &output)
            return output
        }
        let args = node["args"] ?? JSONNode(.object([]))
        guard args.members != nil else {
            Self.error(id: id, .typeError, "line \(lineNumber): \"args\" must be an object", to: &output)
            return output
        }
        do {
            let result = try run(op, args)
            output += Array("{\"id\": ".utf8)
            output += (id ?? JSONNode(.null)).serializedBytes(pretty: false)
            output += Array(", \"result\": ".utf8)
            output += result.result
            for (key, value) in result.extra {
                output += Array(", \"\(key)\": ".utf8)
                output += value
            }
            output.append(0x7D)
        } catch {
            Self.error(id: id, error.kind, error.message, to: &output)
        }
        return output
    }

    static func error(id: JSONNode?, _ kind: VectorsError.Kind, _ message: String, to output: inout [UInt8]) {
        output += Array("{\"id\": ".utf8)
        output += (id ?? JSONNode(.null)).serializedBytes(pretty: false)
        output += Array(", \"error\": {\"type\": \"\(kind.rawValue)\", \"message\": ".utf8)
        output += Array(JSONNode.quoted(message).utf8)
        output += Array("}}".utf8)
    }

    // MARK: - Arguments

    struct Arguments {
        let node: JSONNode
        func string(_ name: String) throws(VectorsError) -> String {
            guard let value = node[name]?.string else {
                throw VectorsError(.typeError, "argument \"\(name)\" must be a string (a key)")
            }
            return value
        }
        func strings(_ name: String) throws(VectorsError) -> [String] {
            guard let value = node[name], value.value != .null else { return [] }
            if let single = value.string { return [single] }
            let strings: [String]? =
                if case .array(let items) = value.value, items.allSatisfy({ $0.string != nil }) {
                    items.compactMap(\.string)
                } else { nil }
            guard let strings else { throw VectorsError(.typeError, "argument \"\(name)\" must be a list of keys") }
            return strings
        }
        func int(_ name: String, default fallback: Int?) throws(VectorsError) -> Int? {
            guard let value = node[name], value.value != .null else { return fallback }
            guard let number = value.integer else {
                throw VectorsError(.typeError, "argument \"\(name)\" must be an integer or null")
            }
            return number
        }
        /// A JSON number as the Python float it is.
        static func double(_ node: JSONNode) -> Double? {
            switch node.value {
            case .integer(let number): Double(number)
            case .number(let number): number
            default: nil
            }
        }
        /// A raw vector: numbers rounded to float32 as np.asarray(…, dtype=float32) does.
        static func floats(_ node: JSONNode) -> [Float]? {
            guard case .array(let items) = node.value else { return nil }
            var values: [Float] = []
            for item in items {
                guard let number = double(item) else { return nil }
                values.append(Float(number))
            }
            return values
        }
        /// Keys, raw vectors or `[key, weight]` pairs, as most_similar takes them.
        func terms(_ name: String) throws(VectorsError) -> [WordVectors.Term] {
            guard let value = node[name], value.value != .null else { return [] }
            if let single = value.string { return [.key(single, weight: nil)] }
            guard case .array(let items) = value.value else {
                throw VectorsError(
                    .typeError, "argument \"\(name)\" must be a list of keys, vectors or [key, weight] pairs")
            }
            var terms: [WordVectors.Term] = []
            for item in items {
                if let key = item.string {
                    terms.append(.key(key, weight: nil))
                } else if case .array(let pair) = item.value, pair.count == 2, let key = pair[0].string,
                    let weight = Self.double(pair[1])
                {
                    // The weight stays a double, as gensim's weights are Python floats.
                    terms.append(.key(key, weight: weight))
                } else if let vector = Self.floats(item) {
                    terms.append(.vector(vector, weight: nil))
                } else {
                    throw VectorsError(
                        .typeError, "an item of \"\(name)\" is neither a key, a vector nor a [key, weight] pair")
                }
            }
            return terms
        }
    }

    // MARK: - Results

    struct Encoded {
        var result: [UInt8]
        var extra: [(String, [UInt8])] = []
    }

    public static func number(_ value: Double) -> [UInt8] {
        if value.isNaN { return Array("NaN".utf8) }
        if value.isInfinite { return Array((value < 0 ? "-Infinity" : "Infinity").utf8) }
        return Array(value.description.utf8)
    }

    public static func key(_ key: String) -> [UInt8] { Array(JSONNode.quoted(key).utf8) }

    public static func list(_ items: [[UInt8]]) -> [UInt8] {
        var output: [UInt8] = [0x5B]
        for (index, item) in items.enumerated() {
            if index > 0 { output += [0x2C, 0x20] }
            output += item
        }
        output.append(0x5D)
        return output
    }

    public static func scored(_ items: [WordVectors.Scored]) -> [UInt8] {
        list(items.map { list([key($0.key), number($0.score)]) })
    }

    func run(_ op: String, _ node: JSONNode) throws(VectorsError) -> Encoded {
        let args = Arguments(node: node)
        switch op {
        case "most_similar", "similar_by_word", "similar_by_vector":
            var positive: [WordVectors.Term]
            switch op {
            case "similar_by_word": positive = [.key(try args.string("word"), weight: nil)]
            case "similar_by_vector":
                guard let vector = node["vector"].flatMap(Arguments.floats) else {
                    throw VectorsError(.typeError, "argument \"vector\" must be a list of numbers")
                }
                positive = [.vector(vector, weight: nil)]
            default: positive = try args.terms("positive")
            }
            let topn = try args.int("topn", default: 10) ?? 10
            let negative = op == "most_similar" ? try args.terms("negative") : []
            let restrict = try args.int("restrict_vocab", default: nil)
            if node["topn"]?.value == .null {
                // gensim returns the raw scores of every row then.
                let scores = try vectors.scores(
                    positive: positive, negative: negative, restrictVocab: restrict,
                    clipStart: try args.int("clip_start", default: 0) ?? 0,
                    clipEnd: try args.int("clip_end", default: nil))
                return Encoded(result: Self.list(scores.map { Self.number(Double($0)) }))
            }
            let result = try vectors.mostSimilar(
                positive: positive, negative: negative, topn: topn, restrictVocab: restrict,
                clipStart: try args.int("clip_start", default: 0) ?? 0, clipEnd: try args.int("clip_end", default: nil))
            return Encoded(result: Self.scored(result))
        case "most_similar_cosmul":
            let result = try vectors.mostSimilarCosmul(
                positive: try args.terms("positive"), negative: try args.terms("negative"),
                topn: try args.int("topn", default: 10))
            return Encoded(result: Self.scored(result))
        case "similarity":
            return Encoded(
                result: Self.number(Double(try vectors.similarity(try args.string("w1"), try args.string("w2")))))
        case "distance":
            return Encoded(
                result: Self.number(Double(try vectors.distance(try args.string("w1"), try args.string("w2")))))
        case "n_similarity":
            return Encoded(
                result: Self.number(Double(try vectors.nSimilarity(try args.strings("ws1"), try args.strings("ws2")))))
        case "doesnt_match":
            let (word, ranking) = try vectors.doesntMatch(try args.strings("words"))
            return Encoded(result: Self.key(word), extra: [("ranking", Self.scored(ranking))])
        case "closer_than":
            return Encoded(
                result: Self.list(
                    try vectors.closerThan(try args.string("key1"), try args.string("key2")).map(Self.key)))
        case "rank":
            return Encoded(
                result: Array(String(try vectors.rank(try args.string("key1"), try args.string("key2"))).utf8))
        case "contains":
            let contained: Bool
            if let index = node["key"]?.integer {
                contained = index >= 0 && index < vectors.count
            } else {
                contained = vectors.index(of: try args.string("key")) != nil
            }
            return Encoded(result: Array((contained ? "true" : "false").utf8))
        case "vector":
            return Encoded(
                result: Self.list(try vectors.vector(try args.string("key")).map { Self.number(Double($0)) }))
        case "unit_vector":
            return Encoded(
                result: Self.list(try vectors.unitVector(try args.string("key")).map { Self.number(Double($0)) }))
        case "norm":
            return Encoded(result: Self.number(Double(try vectors.norm(try args.string("key")))))
        case "load_summary":
            let limit = try args.int("limit", default: nil)
            guard limit == loadedLimit || (limit ?? 0) == (loadedLimit ?? 0) else {
                throw VectorsError(
                    .valueError,
                    "these vectors were loaded with limit \(loadedLimit.map(String.init) ?? "null"); run sluice vectors query with --limit \(limit.map(String.init) ?? "0") for this summary"
                )
            }
            let summary = vectors.summary
            var output = Array("{\"count\": \(summary.count), \"dim\": \(summary.dim), ".utf8)
            output += Array(
                "\"keys_sha256\": \"\(summary.keysSHA256)\", \"vectors_sha256\": \"\(summary.vectorsSHA256)\", ".utf8)
            output += Array("\"first_keys\": ".utf8) + Self.list(summary.firstKeys.map(Self.key))
            output += Array(", \"last_keys\": ".utf8) + Self.list(summary.lastKeys.map(Self.key))
            output += Array(
                ", \"format\": \"\(vectors.format.rawValue)\", \"duplicates_dropped\": \(vectors.duplicatesDropped)}"
                    .utf8)
            return Encoded(result: output)
        default:
            throw VectorsError(
                .valueError, "unknown op \"\(op)\"; one of \(Self.operations.map(\.op).joined(separator: ", "))")
        }
    }
}
