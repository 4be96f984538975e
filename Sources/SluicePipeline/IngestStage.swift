import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest

/// The ingest stage: one task reads its inputs and writes one docs part plus its sidecar.
/// The sidecar is written last and holds the part's checksum: it is the completion record.
public enum IngestStage: StageRunner {
    static func run(_ task: TaskSpec, context: TaskContext) throws -> TaskReport {
        let part = task.id.index ?? 0
        let inputs = task.inputs ?? []
        let name = OutputLayout.partName(part)
        let identity = identity(inputs: inputs, configuration: context.configuration)
        if let done = completed(part: part, identity: identity, layout: context.layout) {
            return TaskReport(
                "ingest \(name): already done, \(done.documents) documents", reused: true,
                counters: ["documents": done.documents, "bytes": done.documentBytes])
        }
        let sidecar = try run(
            part: part, inputs: inputs, settings: context.configuration.ingest, identity: identity,
            layout: context.layout
        ) { documents, bytes in
            context.events.progress(["documents": documents, "bytes": bytes])
        }
        return TaskReport(
            "ingest \(name): \(sidecar.documents) documents, \(sidecar.documentBytes) bytes, \(sidecar.report.skippedCount) skipped",
            reused: false, counters: ["documents": sidecar.documents, "bytes": sidecar.documentBytes])
    }

    /// What a docs part is made from: its inputs (names, sizes, byte ranges) and every ingest
    /// setting but `part_bytes`, which only decides how inputs are grouped.
    static func identity(inputs: [InputFile], configuration: Configuration) -> String {
        var hasher = IdentityHasher(.ingest)
        let settings = configuration.resolved["ingest"]?.members?.filter { $0.key != "part_bytes" } ?? []
        hasher.add("ingest", section: JSONNode(.object(settings)))
        hasher.add("inputs", inputs.map { "\($0.identity) \($0.byteCount)" })
        return hasher.finalize()
    }

    /// - Parameter progress: called after each document with the task's documents and text bytes so far.
    public static func run(
        part: Int, inputs: [InputFile], settings: IngestSettings, identity: String, layout: OutputLayout,
        progress: @escaping (_ documents: Int, _ bytes: Int) -> Void = { _, _ in }
    ) throws -> DocsPart.Sidecar {
        let writer = try DocsPart.Writer(path: layout.docsPart(part))
        let reader = IngestReader(settings: settings, spoolDirectory: layout.workDirectory) { document in
            try writer.append(document)
            progress(writer.documentCount, writer.documentBytes)
        }
        var perInput: [Int] = []
        for input in inputs {
            let before = writer.documentCount
            try reader.read(input)
            perInput.append(writer.documentCount - before)
        }
        let (sha256, fileBytes) = try writer.finish()
        var sidecar = DocsPart.Sidecar(
            part: part, inputs: inputs.map(\.identity), documents: writer.documentCount,
            documentBytes: writer.documentBytes, fileBytes: fileBytes, sha256: sha256, report: reader.report,
            identity: identity)
        sidecar.documentsPerInput = perInput
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.docsSidecar(part))
        return sidecar
    }

    /// The sidecar of a finished task with this identity, if the part on disk still matches it.
    static func completed(part: Int, identity: String, layout: OutputLayout) -> DocsPart.Sidecar? {
        guard let sidecar = try? StableJSON.decode(DocsPart.Sidecar.self, from: layout.docsSidecar(part)),
            sidecar.identity == identity,
            Completion.fileMatches(layout.docsPart(part), bytes: sidecar.fileBytes, sha256: sidecar.sha256)
        else { return nil }
        return sidecar
    }

    /// The docs part a downstream task reads, checked against its sidecar.
    /// - Parameter hashing: re-hash the part (what a task that reads it does); without it only
    ///   its size is checked — for finalize, which reads the sidecar alone.
    static func source(part: Int, for reader: TaskID, layout: OutputLayout, hashing: Bool = true) throws
        -> DocsPart.Sidecar
    {
        let ingest = TaskID(.ingest, part)
        let sidecar = try Completion.upstream(
            DocsPart.Sidecar.self, layout.docsSidecar(part), from: ingest, for: reader)
        let path = layout.docsPart(part)
        let intact =
            hashing
            ? Completion.fileMatches(path, bytes: sidecar.fileBytes, sha256: sidecar.sha256)
            : Completion.fileHasSize(path, sidecar.fileBytes)
        guard intact else {
            throw PipelineError(
                .damagedOutput,
                "\(reader) needs \(ingest): \(layout.docsPart(part)) does not match its sidecar; run again — a damaged part is redone",
                path: layout.docsPart(part))
        }
        return sidecar
    }
}
