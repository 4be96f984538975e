import Foundation
import SluiceConfig
import SluiceIO
import SluiceIngest

/// The ingest stage: one task reads its inputs and writes one docs part plus its sidecar.
/// The sidecar is written last and holds the part's checksum: it is the completion record.
public enum IngestStage {
    /// - Parameter progress: called after each document with the task's documents and text bytes so far.
    public static func run(
        _ task: Plan.IngestTask, settings: IngestSettings, layout: OutputLayout,
        progress: @escaping (_ documents: Int, _ bytes: Int) -> Void = { _, _ in }
    ) throws -> DocsPart.Sidecar {
        let partPath = layout.docsPart(task.part)
        let writer = try DocsPart.Writer(path: partPath)
        let reader = IngestReader(settings: settings) { document in
            try writer.append(document)
            progress(writer.documentCount, writer.documentBytes)
        }
        for input in task.inputs { try reader.read(input) }
        let (sha256, fileBytes) = try writer.finish()
        let sidecar = DocsPart.Sidecar(
            part: task.part, inputs: task.inputs.map(\.identity), documents: writer.documentCount,
            documentBytes: writer.documentBytes, fileBytes: fileBytes, sha256: sha256, report: reader.report)
        try AtomicFileWriter.write(try StableJSON.encode(sidecar), to: layout.docsSidecar(task.part))
        return sidecar
    }

    /// The sidecar of a finished task, if the part on disk still matches it.
    public static func completed(_ task: Plan.IngestTask, layout: OutputLayout) -> DocsPart.Sidecar? {
        guard let sidecar = try? StableJSON.decode(DocsPart.Sidecar.self, from: layout.docsSidecar(task.part)),
            sidecar.inputs == task.inputs.map(\.identity),
            Completion.fileMatches(layout.docsPart(task.part), bytes: sidecar.fileBytes, sha256: sidecar.sha256)
        else { return nil }
        return sidecar
    }
}

enum Completion {
    /// Whether `path` has the recorded size and SHA-256.
    static func fileMatches(_ path: String, bytes: Int, sha256: String) -> Bool {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            (attributes[.size] as? NSNumber)?.intValue == bytes
        else { return false }
        return (try? SHA256Hasher.hex(ofFile: path)) == sha256
    }
}
