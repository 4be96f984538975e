import Foundation
import SluiceIO

/// `"extends": ["../configs/gpt2-small.json", …]`: reusable pieces of config merged under the
/// config that names them (docs/CONFIG.md, Presets).
///
/// Presets are merged in order, then the config itself, section by section: an object merges
/// key by key (recursively), anything else — a string, a number, an array, null — replaces what
/// came before. A preset may extend others (a cycle is an error). Paths in a preset (`inputs`,
/// `output`, `tokenizer.vocab`/`merges`, `embedding.pretrained`) are relative to the preset's
/// own directory and are rewritten relative to the config's, so the merged config means the
/// same wherever the checkout is. Every value remembers the file it came from, so an error
/// names that file.
struct ConfigPresets {
    /// Keys whose strings are paths, as dotted paths (`inputs` is an array of paths).
    static let pathKeys: Set<String> = [
        "inputs", "output", "tokenizer.vocab", "tokenizer.merges", "embedding.pretrained",
        "tokenizer.words.vocab_from", "embedding.vectors",
    ]

    /// The file each merged value came from, by dotted JSON path.
    var origins: [String: String] = [:]
    var issues: [ConfigIssue] = []
    let rootDirectory: String

    init(rootDirectory: String) {
        self.rootDirectory = rootDirectory
    }

    /// The config with its presets merged in (and without `extends`).
    mutating func merge(_ node: JSONNode, file: String) -> JSONNode {
        expand(
            node, file: file, directory: rootDirectory,
            chain: [Self.absolute(file, in: FileManager.default.currentDirectoryPath)])
    }

    private mutating func expand(_ node: JSONNode, file: String, directory: String, chain: [String]) -> JSONNode {
        guard let members = node.members else { return node }
        var merged = JSONNode(.object([]), line: node.line, column: node.column)
        if let extends = node["extends"] {
            let names: [JSONNode]
            switch extends.value {
            case .array(let items): names = items
            case .string: names = [extends]
            default:
                issues.append(
                    ConfigIssue(
                        path: "extends", line: extends.line, column: extends.column,
                        message: "expected a preset file or a list of them, got \(extends.typeName)", file: file))
                names = []
            }
            for (index, name) in names.enumerated() {
                guard let relative = name.string else {
                    issues.append(
                        ConfigIssue(
                            path: "extends[\(index)]", line: name.line, column: name.column,
                            message: "expected a path to a preset file", file: file))
                    continue
                }
                let path = Self.absolute(relative, in: directory)
                if chain.contains(path) {
                    issues.append(
                        ConfigIssue(
                            path: "extends[\(index)]", line: name.line, column: name.column,
                            message:
                                "\(relative) extends itself through \(chain.map { ($0 as NSString).lastPathComponent }.joined(separator: " → "))",
                            file: file))
                    continue
                }
                guard let data = FileManager.default.contents(atPath: path) else {
                    issues.append(
                        ConfigIssue(
                            path: "extends[\(index)]", line: name.line, column: name.column,
                            message: "cannot read the preset \(path) (relative paths start at this file's directory)",
                            file: file))
                    continue
                }
                let preset: JSONNode
                do {
                    preset = try JSONNode.parse([UInt8](data))
                } catch {
                    issues.append(
                        ConfigIssue(
                            path: "", line: error.line, column: error.column, message: "invalid JSON: \(error.message)",
                            file: path))
                    continue
                }
                guard preset.members != nil else {
                    issues.append(ConfigIssue(path: "", message: "a preset must be a JSON object", file: path))
                    continue
                }
                let presetDirectory = (path as NSString).deletingLastPathComponent
                let expanded = expand(preset, file: path, directory: presetDirectory, chain: chain + [path])
                merged = overlay(merged, expanded, path: "")
            }
        }
        var own = JSONNode(.object(members.filter { $0.key != "extends" }), line: node.line, column: node.column)
        own = rebase(own, from: directory, path: "")
        record(own, file: file, path: "")
        return overlay(merged, own, path: "")
    }

    /// `top` over `base`: objects key by key, anything else replaced.
    private func overlay(_ base: JSONNode, _ top: JSONNode, path: String) -> JSONNode {
        guard var result = base.members, let members = top.members else { return top }
        for (key, value) in members {
            if let index = result.firstIndex(where: { $0.key == key }) {
                result[index].value = overlay(result[index].value, value, path: Self.join(path, key))
            } else {
                result.append((key, value))
            }
        }
        return JSONNode(.object(result), line: top.line, column: top.column)
    }

    /// Path strings of `node`, relative to `directory`, made relative to the config's directory.
    private func rebase(_ node: JSONNode, from directory: String, path: String) -> JSONNode {
        guard directory != rootDirectory else { return node }
        if Self.pathKeys.contains(path) {
            switch node.value {
            case .string(let bytes):
                return JSONNode(
                    .string(
                        Array(
                            Self.relocate(String(decoding: bytes, as: UTF8.self), from: directory, to: rootDirectory)
                                .utf8)),
                    line: node.line, column: node.column)
            case .array(let items):
                return JSONNode(
                    .array(items.map { rebase($0, from: directory, path: path) }), line: node.line, column: node.column)
            default:
                return node
            }
        }
        guard let members = node.members else { return node }
        return JSONNode(
            .object(members.map { ($0.key, rebase($0.value, from: directory, path: Self.join(path, $0.key))) }),
            line: node.line, column: node.column)
    }

    private mutating func record(_ node: JSONNode, file: String, path: String) {
        origins[path] = file
        for (key, value) in node.members ?? [] { record(value, file: file, path: Self.join(path, key)) }
    }

    /// The file the value at `path` (or its nearest recorded parent) came from.
    func origin(of path: String) -> String? {
        var candidate = path
        while true {
            if let file = origins[candidate] { return file }
            if let bracket = candidate.lastIndex(of: "[") {
                candidate = String(candidate[..<bracket])
            } else if let dot = candidate.lastIndex(of: ".") {
                candidate = String(candidate[..<dot])
            } else {
                return candidate.isEmpty ? nil : origins[""]
            }
        }
    }

    /// `issue` with the file its value came from, when that is a preset.
    func located(_ issue: ConfigIssue, config: String) -> ConfigIssue {
        guard let origin = origin(of: issue.path), origin != config
        else { return issue }
        var located = issue
        located.file = origin
        return located
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    static func absolute(_ path: String, in directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
        return (joined as NSString).standardizingPath
    }

    /// `path` (relative to `from`, or absolute) as seen from `to`; absolute paths stay absolute,
    /// and glob characters survive because nothing is resolved on disk.
    static func relocate(_ path: String, from: String, to: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        let target = absolute(path, in: from).split(separator: "/")
        let base = (to as NSString).standardizingPath.split(separator: "/")
        var common = 0
        while common < min(target.count, base.count) && target[common] == base[common] { common += 1 }
        let up = Array(repeating: "..", count: base.count - common)
        let rest = target[common...].map(String.init)
        let parts = up + rest
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }
}
