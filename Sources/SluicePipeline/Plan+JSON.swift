import SluiceIO
import SluiceIngest

extension Plan {
    /// The task graph as JSON: every task with its inputs, outputs and the tasks it needs.
    /// Written to `OUT/_work/plan.json` by `sluice run` and printed by `sluice plan`.
    /// - Parameter shards: the materialize tasks' shard numbers once the window task has fixed
    ///   them (they depend on the token count); nil before.
    public func graph(window: Bool, shards: [Int]? = nil) -> JSONNode {
        func string(_ text: String) -> JSONNode { JSONNode(.string(Array(text.utf8))) }
        var tasks: [JSONNode] = []
        if tokenize {
            tasks.append(
                JSONNode(
                    .object([
                        ("id", string("tokenizer")),
                        ("stage", string("tokenizer")),
                        (
                            "outputs",
                            JSONNode(.array([string("_work/tokenizer.tiktoken"), string("_work/tokenizer.json")]))
                        ),
                        (
                            "needs",
                            JSONNode(.array(train ? ingest.map { string("count/\(Plan.partName($0.part))") } : []))
                        ),
                    ])))
        }
        for task in ingest {
            let name = Plan.partName(task.part)
            tasks.append(
                JSONNode(
                    .object([
                        ("id", string("ingest/\(name)")),
                        ("stage", string("ingest")),
                        ("part", JSONNode(.integer(Int64(task.part)))),
                        ("inputs", JSONNode(.array(task.inputs.map { string($0.identity) }))),
                        (
                            "input_bytes",
                            JSONNode(
                                .integer(Int64(task.inputs.reduce(0) { $0 + ($1.byteRange?.count ?? $1.byteCount) })))
                        ),
                        ("outputs", JSONNode(.array([string("docs/\(name).lz4"), string("docs/\(name).json")]))),
                        ("needs", JSONNode(.array([]))),
                    ])))
            if train {
                tasks.append(
                    JSONNode(
                        .object([
                            ("id", string("count/\(name)")),
                            ("stage", string("count")),
                            ("part", JSONNode(.integer(Int64(task.part)))),
                            (
                                "outputs",
                                JSONNode(
                                    .array([
                                        string("_work/wordcounts/\(name).counts"),
                                        string("_work/wordcounts/\(name).json"),
                                    ]))
                            ),
                            ("needs", JSONNode(.array([string("ingest/\(name)")]))),
                        ])))
            }
            if tokenize {
                tasks.append(
                    JSONNode(
                        .object([
                            ("id", string("tokenize/\(name)")),
                            ("stage", string("tokenize")),
                            ("part", JSONNode(.integer(Int64(task.part)))),
                            (
                                "outputs",
                                JSONNode(
                                    .array([
                                        string("tokens/\(name).lz4"), string("tokens/\(name).doc-tokens.lz4"),
                                        string("tokens/\(name).json"),
                                    ]))
                            ),
                            ("needs", JSONNode(.array([string("ingest/\(name)"), string("tokenizer")]))),
                        ])))
            }
        }
        var notes: [(String, JSONNode)] = []
        if window && tokenize {
            tasks.append(
                JSONNode(
                    .object([
                        ("id", string("window")),
                        ("stage", string("window")),
                        (
                            "outputs",
                            JSONNode(
                                .array([
                                    string("_work/stream.ids"), string("_work/windows.i64"), string("tables/"),
                                    string("_work/window.json"),
                                ]))
                        ),
                        ("needs", JSONNode(.array(ingest.map { string("tokenize/\(Plan.partName($0.part))") }))),
                    ])))
            if let shards {
                for shard in shards {
                    let name = MaterializeStage.shardName(shard)
                    tasks.append(
                        JSONNode(
                            .object([
                                ("id", string("materialize/\(name)")),
                                ("stage", string("materialize")),
                                ("part", JSONNode(.integer(Int64(shard)))),
                                ("outputs", JSONNode(.array([string("shards/\(name)")]))),
                                ("needs", JSONNode(.array([string("window")]))),
                            ])))
                }
                notes.append(
                    ("finally", string("the coordinator writes manifest.json, tokenizer.tiktoken and report.json")))
            } else {
                notes.append(
                    (
                        "materialize",
                        string(
                            "one task per output shard after the window task, which fixes the shards from the token count; then the coordinator writes manifest.json"
                        )
                    ))
            }
        }
        return JSONNode(
            .object([("format", string("sluice.plan.v1")), ("tasks", JSONNode(.array(tasks)))] + notes))
    }
}
