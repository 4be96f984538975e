import Foundation
import SluiceConfig
import SluiceIngest
import SluiceTestSupport

/// Documents and report from ingesting `paths` with `settings`.
func ingest(_ paths: [String], settings: IngestSettings = IngestSettings()) throws -> (
    documents: [String], report: IngestReport
) {
    let collected = Collected()
    let reader = IngestReader(settings: settings) { collected.documents.append(try $0.wholeBytes()) }
    for file in try InputResolver.expand(paths, readHidden: !settings.skipHiddenFiles) { try reader.read(file) }
    return (collected.documents.map { String(decoding: $0, as: UTF8.self) }, reader.report)
}

func ingestBytes(_ paths: [String], settings: IngestSettings = IngestSettings()) throws -> [[UInt8]] {
    let collected = Collected()
    let reader = IngestReader(settings: settings) { collected.documents.append(try $0.wholeBytes()) }
    for file in try InputResolver.expand(paths, readHidden: !settings.skipHiddenFiles) { try reader.read(file) }
    return collected.documents
}

final class Collected: @unchecked Sendable {
    // Invariant: used from one thread (the test's) only.
    var documents: [[UInt8]] = []
}

/// A directory with three small text files, the material most archive tests pack.
func makeTextTree(in directory: TemporaryDirectory) throws {
    try directory.write("src/a.txt", "alpha document\n")
    try directory.write("src/sub/b.txt", "beta document\n")
    try directory.write("src/c.md", "gamma document\n")
}

let treeDocuments = ["alpha document\n", "gamma document\n", "beta document\n"]
