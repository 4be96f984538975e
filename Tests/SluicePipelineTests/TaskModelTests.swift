import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest
import SluicePipeline
import SluiceTestSupport
import Testing

@Suite("task model: ids, plans, errors")
struct TaskModelTests {
    @Test("task ids have one spelling, which parses back; anything else does not parse")
    func taskIDs() {
        let ids = [
            TaskID(.ingest, 0), TaskID(.count, 12), .tokenizer, TaskID(.tokenize, 99_999), .window,
            TaskID(.materialize, 2), TaskID(.materialize, 123_456), .finalize,
        ]
        #expect(ids.map(\.description).contains("materialize/shard-00002"))
        #expect(ids.map(\.description).contains("tokenize/part-99999"))
        #expect(ids.map(\.description).contains("materialize/shard-123456"))
        for id in ids { #expect(TaskID(parsing: id.description) == id, "\(id)") }
        for text in [
            "", "ingest", "window/part-00000", "ingest/part-1", "ingest/shard-00001", "materialize/part-00001",
            "ingest/part-000001", "ingest/part-0000x", "ingest/part--0001", "ingest/part-00001/x", "Ingest/part-00001",
            "tokenizer/", "ingest/part-٠٠٠٠١",
        ] {
            #expect(TaskID(parsing: text) == nil, "\(text)")
        }
        #expect(ids.sorted().map(\.stage) == ids.map(\.stage).sorted())
    }

    @Test("a plan from a config lists every task once, in dependency order, and its JSON reads back equal")
    func planFromConfig() throws {
        let directory = try TemporaryDirectory()
        for index in 0..<5 {
            try directory.write("corpus/\(index).txt", String(repeating: "text \(index) ", count: 100 * (index + 1)))
        }
        try directory.write("gpt2.tiktoken", "IQ== 0\n")
        let config = try directory.write(
            "pipeline.json",
            """
            {"inputs": ["corpus"], "ingest": {"part_bytes": 1500},
             "tokenizer": {"vocab": "gpt2.tiktoken", "special_tokens": {}, "document_separator": null},
             "window": {"max_length": 4, "stride": 4, "batch_size": 2}}
            """)
        let configuration = try Configuration.load(file: config)
        let plan = try Plan(configuration: configuration)
        let ids = plan.tasks.map(\.id)
        #expect(Set(ids).count == ids.count)
        let parts = ids.filter { $0.stage == .ingest }.count
        #expect(parts >= 3)
        #expect(ids.filter { $0.stage == .tokenize }.count == parts)
        #expect(ids.last == .finalize)
        #expect(plan.expansion?.stage == .materialize)
        #expect(plan.expansion?.after == .window)
        #expect(plan.expansion?.record == "_work/window.json")
        var seen: Set<TaskID> = []
        for task in plan.tasks {
            for need in task.needs { #expect(seen.contains(need), "\(task.id) listed before \(need)") }
            seen.insert(task.id)
        }
        let finalize = try #require(plan.tasks.last)
        #expect(finalize.needsEvery == [.materialize])
        #expect(finalize.writes.contains("manifest.json"))
        let ingest = try #require(plan.tasks.first)
        #expect(ingest.inputs?.map(\.name).first == "corpus/0.txt")
        #expect(ingest.writes == ["docs/part-00000.lz4", "docs/part-00000.json"])
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(try plan.encoded()))
        #expect(decoded == plan)
        // The same config plans the same graph with any worker count: workers are not an input.
        var other = configuration
        other.workers = 7
        #expect(try Plan(configuration: other) == plan)
    }

    @Test("an ingest-only plan ends with finalize after every ingest task and expands nothing")
    func ingestOnlyPlan() throws {
        let directory = try TemporaryDirectory()
        try directory.write("corpus/a.txt", "hello")
        let config = try directory.write("pipeline.json", "{\"inputs\": [\"corpus\"]}")
        let plan = try Plan(configuration: try Configuration.load(file: config))
        #expect(plan.tasks.map(\.id) == [TaskID(.ingest, 0), .finalize])
        #expect(plan.expansion == nil)
        #expect(plan.tasks.last?.writes == ["report.json"])
    }

    @Test("errors carry the retry decision: failed reads and writes retry; bad data, input and config do not")
    func retryDecision() {
        let readFailure = PipelineError.classify(
            IOError(.cannotRead, path: "/x/docs/part-00000.lz4", "read failed: EIO"))
        #expect(readFailure.isRetryable && readFailure.code == .io)
        #expect(readFailure.path == "/x/docs/part-00000.lz4")
        #expect(WorkerExit.status(for: readFailure) == WorkerExit.retryable)
        let damaged = PipelineError.classify(IOError(.checksumMismatch, path: "/x/a.lz4", "checksum mismatch"))
        #expect(!damaged.isRetryable && damaged.code == .damagedOutput)
        let badInput = PipelineError.classify(IngestError(.malformedJSONL, file: "a.jsonl", line: 2, "not JSON"))
        #expect(!badInput.isRetryable && badInput.code == .badInput)
        #expect(WorkerExit.status(for: badInput) == WorkerExit.permanent)
        let wrapped = PipelineError(.io, "stream.ids: pread failed", path: "stream.ids")
        #expect(PipelineError.classify(wrapped).isRetryable)
        struct Unknown: Error {}
        #expect(!PipelineError.classify(Unknown()).isRetryable)
    }

    @Test("worker messages survive their line encoding; plain output is not a message")
    func workerMessages() {
        let messages: [WorkerMessage] = [
            .progress(["bytes": 12, "tokens": 3]), .log("a \"quoted\" line\nwith a newline"),
            .done(TaskReport("tokenize part-00001: 5 tokens", reused: true, counters: ["tokens": 5])),
        ]
        for message in messages {
            let line = message.line
            #expect(line.last == 0x0A)
            #expect(line.dropLast().allSatisfy { $0 != 0x0A })
            #expect(WorkerMessage(line: line.dropLast()) == message)
        }
        #expect(WorkerMessage(line: Array("Traceback: something".utf8)) == nil)
        #expect(WorkerMessage(line: Array("{\"event\":\"unknown\"}".utf8)) == nil)
    }
}
