import Foundation
import SluiceBPE
import SluiceIO

/// `sluice verify OUT`: re-checks everything the manifest promises — its own config hash, the
/// tokenizer and table files, every shard's size, SHA-256, safetensors header, shapes and
/// batch ranges — and names each thing that is wrong.
public enum OutputVerifier {
    public struct Outcome: Sendable {
        public var problems: [String]
        public var checkedFiles: Int
        public var checkedBytes: Int
        /// Not problems with the output's files, but worth saying: inputs that were not read
        /// completely (the manifest's `partial_inputs`).
        public var warnings: [String] = []
    }

    public static func verify(root: String) -> Outcome {
        var outcome = Outcome(problems: [], checkedFiles: 0, checkedBytes: 0)
        func problem(_ text: String) { outcome.problems.append(text) }
        let layout = OutputLayout(root: root)
        guard let data = FileManager.default.contents(atPath: layout.manifest) else {
            problem("\(layout.manifest): missing or unreadable; is \(root) a sluice output with windows?")
            return outcome
        }
        let manifest: JSONNode
        do {
            manifest = try JSONNode.parse([UInt8](data))
        } catch {
            problem("\(layout.manifest): not valid JSON (\(error)); the manifest is damaged — re-run sluice run")
            return outcome
        }
        guard manifest["format"]?.string == Manifest.formatName else {
            problem(
                "\(layout.manifest): format is \(manifest["format"]?.string ?? "missing"), expected \(Manifest.formatName)"
            )
            return outcome
        }
        let partial: [JSONNode] = if case .array(let items)? = manifest["partial_inputs"]?.value { items } else { [] }
        for input in partial {
            var location = input["file"]?.string ?? "?"
            if let member = input["member"]?.string { location += ": member \"\(member)\"" }
            if case .integer(let offset)? = input["offset"]?.value { location += " at byte \(offset)" }
            outcome.warnings.append(
                "partial input: \(location) (\(input["reason"]?.string ?? "?")) was not read completely; the output lacks what it held after that point"
            )
        }
        if let config = manifest["config"],
            SHA256Hasher.hex(Array(config.serialized().utf8)) != manifest["config_sha256"]?.string
        {
            problem(
                "\(layout.manifest): config_sha256 does not match the config it holds (the manifest was edited or damaged)"
            )
        }
        func int(_ node: JSONNode?) -> Int? { if case .integer(let v)? = node?.value { Int(v) } else { nil } }
        func checkFile(_ relative: String?, sha256: String?, what: String) {
            guard let relative, let sha256 else {
                problem("\(layout.manifest): \(what) has no file or sha256")
                return
            }
            let path = root + "/" + relative
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int,
                let actual = try? SHA256Hasher.hex(ofFile: path)
            else {
                problem("\(path): missing or unreadable (\(what))")
                return
            }
            outcome.checkedFiles += 1
            outcome.checkedBytes += size
            if actual != sha256 {
                problem("\(path): SHA-256 does not match the manifest (\(what) is damaged or was replaced)")
            }
        }
        // Shards are decompressed once and hashed as they are read, never read twice.
        func readShard(_ path: String, sha256: String?, bytes: Int?) -> [UInt8]? {
            do {
                let reader = try LZ4FrameReader(path: path)
                let content = try reader.readAll()
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                outcome.checkedFiles += 1
                outcome.checkedBytes += size
                if let bytes, bytes != size { problem("\(path): \(size) bytes, manifest says \(bytes)") }
                guard reader.compressedSHA256 == sha256 else {
                    problem("\(path): SHA-256 does not match the manifest (the shard is damaged or was replaced)")
                    return nil
                }
                return content
            } catch {
                problem("\(error) (shard)")
                return nil
            }
        }
        checkFile(
            manifest["tokenizer"]?["file"]?.string, sha256: manifest["tokenizer"]?["sha256"]?.string, what: "tokenizer")
        if case .array(let tables)? = manifest["embedding"]?["tables"]?.value {
            for table in tables {
                checkFile(
                    table["file"]?.string, sha256: table["sha256"]?.string,
                    what: "table \(table["name"]?.string ?? "?")")
            }
        }
        // The training split, then the validation split (`splits`), each checked the same way.
        func verifyShards(_ manifest: JSONNode) {
            if manifest["shards_kind"]?.string == "tokens" {
                if let indexBytes = verifyTokenShards(
                    manifest, root: root, layout: layout, readShard: readShard, problem: problem)
                {
                    outcome.checkedFiles += 1
                    outcome.checkedBytes += indexBytes
                }
                return
            }
            let maxLength = int(manifest["window"]?["max_length"]) ?? 0
            let batchSize = int(manifest["window"]?["batch_size"]) ?? 0
            let dim = int(manifest["embedding"]?["output_dim"])
            guard case .array(let shards)? = manifest["shards"]?.value else {
                problem("\(layout.manifest): no shards list")
                return
            }
            var nextBatch = 0
            var windows = 0
            for shard in shards {
                let name = shard["file"]?.string ?? "?"
                let batches = int(shard["batches"]) ?? -1
                let shardWindows = int(shard["windows"]) ?? -1
                if int(shard["first_batch"]) != nextBatch {
                    problem("\(name): first_batch is \(int(shard["first_batch"]) ?? -1), expected \(nextBatch)")
                }
                nextBatch += max(0, batches)
                windows += max(0, shardWindows)
                let path = root + "/" + name
                guard let content = readShard(path, sha256: shard["sha256"]?.string, bytes: int(shard["bytes"])) else {
                    continue
                }
                do {
                    let layoutInfo = try SafeTensors.layout(of: content, path: path)
                    var expected: [(String, [Int])] = [
                        ("inputs", [shardWindows, maxLength]), ("targets", [shardWindows, maxLength]),
                    ]
                    if let dim { expected.append(("embeddings", [shardWindows, maxLength, dim])) }
                    for (tensorName, shape) in expected {
                        guard let entry = layoutInfo.tensors.first(where: { $0.tensor.name == tensorName }) else {
                            problem("\(path): no \"\(tensorName)\" tensor")
                            continue
                        }
                        if entry.tensor.shape != shape {
                            problem("\(path): \(tensorName) has shape \(entry.tensor.shape), manifest implies \(shape)")
                        }
                        if layoutInfo.dataStart + entry.range.upperBound > content.count {
                            problem("\(path): \(tensorName) runs past the end of the data")
                        }
                    }
                    if content.count != int(shard["content_bytes"]) {
                        problem(
                            "\(path): holds \(content.count) bytes, manifest says \(int(shard["content_bytes"]) ?? -1)")
                    }
                    if batches * batchSize < shardWindows || (batches - 1) * batchSize >= shardWindows {
                        problem("\(path): \(shardWindows) windows do not make \(batches) batches of \(batchSize)")
                    }
                } catch {
                    problem("\(error)")
                }
            }
            let totalWindows = int(manifest["totals"]?["windows"]) ?? -1
            let totalBatches = int(manifest["totals"]?["batches"]) ?? -1
            let dropLast = manifest["window"]?["drop_last"]?.value != .bool(false)
            if nextBatch != totalBatches {
                problem("\(layout.manifest): shards hold \(nextBatch) batches, totals say \(totalBatches)")
            }
            if batchSize > 0 {
                let expectedBatches = dropLast ? totalWindows / batchSize : (totalWindows + batchSize - 1) / batchSize
                let expectedRows = dropLast ? expectedBatches * batchSize : totalWindows
                if totalBatches != expectedBatches {
                    problem(
                        "\(layout.manifest): \(totalWindows) windows make \(expectedBatches) batches of \(batchSize), totals say \(totalBatches)"
                    )
                }
                if windows != expectedRows {
                    problem("\(layout.manifest): shards hold \(windows) windows, totals imply \(expectedRows)")
                }
            }
        }
        verifyShards(manifest)
        if let validation = manifest["splits"]?["validation"], validation.members != nil {
            var members = (manifest.members ?? []).filter { !["totals", "token_stream", "shards"].contains($0.key) }
            members += (validation.members ?? []).filter { ["totals", "token_stream", "shards"].contains($0.key) }
            verifyShards(JSONNode(.object(members)))
        }
        return outcome
    }

    /// Token shards: every shard's hash and size, that they hold the stream back to back, and the
    /// document index's hash, size and order. Returns the index's size when it could be read.
    static func verifyTokenShards(
        _ manifest: JSONNode, root: String, layout: OutputLayout,
        readShard: (String, String?, Int?) -> [UInt8]?, problem: (String) -> Void
    ) -> Int? {
        let stream = manifest["token_stream"]
        let idBytes = stream?["dtype"]?.string == "uint16" ? 2 : 4
        let totalTokens = manifest["totals"]?["tokens"]?.integer ?? -1
        guard case .array(let shards)? = manifest["shards"]?.value else {
            problem("\(layout.manifest): no shards list")
            return nil
        }
        var next = 0
        for shard in shards {
            let name = shard["file"]?.string ?? "?"
            let tokens = shard["tokens"]?.integer ?? -1
            if shard["first_token"]?.integer != next {
                problem("\(name): first_token is \(shard["first_token"]?.integer ?? -1), expected \(next)")
            }
            next += max(0, tokens)
            let path = root + "/" + name
            guard let content = readShard(path, shard["sha256"]?.string, shard["bytes"]?.integer) else { continue }
            if content.count != tokens * idBytes || content.count != shard["content_bytes"]?.integer {
                problem(
                    "\(path): holds \(content.count) bytes, manifest says \(tokens) ids of \(idBytes) bytes (content_bytes \(shard["content_bytes"]?.integer ?? -1))"
                )
            }
        }
        if next != totalTokens {
            problem("\(layout.manifest): shards hold \(next) ids, totals say \(totalTokens)")
        }
        let documents = stream?["documents"]
        let count = documents?["count"]?.integer ?? -1
        guard let file = documents?["file"]?.string else {
            problem("\(layout.manifest): token_stream has no document index")
            return nil
        }
        let path = root + "/" + file
        guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
            problem("\(path): missing or unreadable (document index)")
            return nil
        }
        if SHA256Hasher.hex(bytes) != documents?["sha256"]?.string {
            problem("\(path): SHA-256 does not match the manifest (the document index is damaged or was replaced)")
            return bytes.count
        }
        guard bytes.count == count * 8, count == manifest["totals"]?["documents"]?.integer else {
            problem(
                "\(path): \(bytes.count) bytes for \(count) documents; totals say \(manifest["totals"]?["documents"]?.integer ?? -1)"
            )
            return bytes.count
        }
        var previous = -1
        for document in 0..<count {
            let start = (0..<8).reduce(0) { $0 | Int(bytes[document * 8 + $1]) << (8 * $1) }
            if start < previous || start > totalTokens {
                problem(
                    "\(path): document \(document) starts at \(start): before document \(document - 1) (\(previous)) or past the stream's \(totalTokens) ids"
                )
                return bytes.count
            }
            previous = start
        }
        return bytes.count
    }
}
