import Foundation

/// Runs commands for tests: the real archive tools that make fixtures, and the built `sluice`.
public enum Shell {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: String
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs `/bin/sh -c command` in `directory`, with stdin from `input`.
    @discardableResult
    public static func run(_ command: String, in directory: String? = nil, input: [UInt8]? = nil) throws -> Output {
        try run(["/bin/sh", "-c", command], in: directory, input: input)
    }

    public static func run(_ arguments: [String], in directory: String? = nil, input: [UInt8]? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        let errorData = ErrorCollector()
        let group = DispatchGroup()
        let errorHandle = stderr.fileHandleForReading
        DispatchQueue.global().async(group: group) { errorData.set(errorHandle.readDataToEndOfFile()) }
        if let input { stdin.fileHandleForWriting.write(Data(input)) }
        try? stdin.fileHandleForWriting.close()
        let outData = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        return Output(
            status: process.terminationStatus, stdout: [UInt8](outData),
            stderr: String(decoding: errorData.get(), as: UTF8.self))
    }

    /// Fails the calling test with the command's output when it does not exit 0.
    @discardableResult
    public static func must(_ command: String, in directory: String? = nil) throws -> Output {
        let output = try run(command, in: directory)
        guard output.status == 0 else {
            throw ShellError(description: "`\(command)` exited \(output.status): \(output.stderr)")
        }
        return output
    }
}

public struct ShellError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

private final class ErrorCollector: @unchecked Sendable {
    // Invariant: every access to `data` holds `lock`.
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.withLock { data = value } }
    func get() -> Data { lock.withLock { data } }
}

/// The `sluice` executable built by `swift build` (or `SLUICE_BINARY`).
public enum SluiceBinary {
    public static var path: String {
        if let override = ProcessInfo.processInfo.environment["SLUICE_BINARY"] { return override }
        let candidates = [".build/debug/sluice", ".build/release/sluice"].map {
            Fixtures.repositoryRoot.appendingPathComponent($0).path
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    @discardableResult
    public static func run(_ arguments: [String], in directory: String? = nil, input: [UInt8]? = nil) throws
        -> Shell.Output
    {
        try Shell.run([path] + arguments, in: directory, input: input)
    }
}
