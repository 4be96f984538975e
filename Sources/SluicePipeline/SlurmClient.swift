import CSluiceProcess
import Foundation
import SluiceConfig

#if canImport(Glibc)
    import Glibc
#endif

/// One element of a Slurm job array, `1234_5`: every attempt of a task is one (arrays of one
/// element included), so refs, dependencies and `squeue -r` lines all have the same shape.
public struct SlurmJobRef: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var job: Int
    public var index: Int

    public init(job: Int, index: Int) {
        self.job = job
        self.index = index
    }

    /// Parses `1234_5`; nil for a plain job id or a compressed range (`1234_[0-9]`).
    public init?(parsing text: some StringProtocol) {
        let pieces = text.split(separator: "_")
        guard pieces.count == 2, let job = Int(pieces[0]), let index = Int(pieces[1]) else { return nil }
        self.init(job: job, index: index)
    }

    public var description: String { "\(job)_\(index)" }

    public static func < (lhs: SlurmJobRef, rhs: SlurmJobRef) -> Bool {
        (lhs.job, lhs.index) < (rhs.job, rhs.index)
    }
}

/// What `squeue` says about one job array element.
public struct SlurmJobStatus: Sendable, Equatable {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, `CANCELLED`, `TIMEOUT`, …
    public var state: String
    /// `Dependency`, `DependencyNeverSatisfied`, `NonZeroExitCode`, `None`, …
    public var reason: String

    public init(state: String, reason: String) {
        self.state = state
        self.reason = reason
    }

    /// Terminal states; anything else (pending, running, completing, suspended, requeued) is
    /// still in progress.
    public var isFinal: Bool {
        switch state {
        case "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED":
            true
        default: false
        }
    }

    public var hasStarted: Bool { state != "PENDING" }
}

/// What `squeue` lists: array elements that have their own record, and jobs listed as a whole —
/// an array cancelled before any element started (one record for all of them), or a job that
/// is not an array (a detached run's coordinator).
public struct SlurmQueue: Sendable {
    public var elements: [SlurmJobRef: SlurmJobStatus] = [:]
    public var arrays: [Int: SlurmJobStatus] = [:]

    public subscript(_ ref: SlurmJobRef) -> SlurmJobStatus? { elements[ref] ?? arrays[ref.job] }
}

/// A Slurm command that could not be run or failed; the message is its own error output.
public struct SlurmCommandError: Error, CustomStringConvertible {
    public var command: String
    public var message: String
    public var description: String { message.hasPrefix(command + ":") ? message : "\(command): \(message)" }
}

/// Slurm's user commands — `sbatch`, `squeue`, `scancel`, `scontrol` — run as short child
/// processes, their output parsed. The cluster is whatever they find: `SLURM_CONF` and the
/// defaults of the environment the coordinator runs in.
public struct SlurmClient: Sendable {
    public init() {}

    /// Whether `sbatch` is on the PATH (the first thing a Slurm run checks).
    public static func sbatchPath() -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/sbatch"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// This process's user (`--user` rather than `--me`, which Slurm before 20.11 lacks).
    static let userName: String = {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return String(geteuid()) }
        return String(cString: name)
    }()

    /// `sbatch --parsable ARGUMENTS`: the new job's id.
    public func submit(_ arguments: [String]) throws(SlurmCommandError) -> Int {
        let result = try run(["sbatch", "--parsable"] + arguments)
        // `1234` or `1234;cluster`.
        guard
            let id = Int(
                result.split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        else {
            throw SlurmCommandError(command: "sbatch", message: "unexpected answer \"\(result)\"")
        }
        return id
    }

    /// The caller's jobs, one line per array element, including those finished within the
    /// cluster's `MinJobAge`.
    public func queue() throws(SlurmCommandError) -> SlurmQueue {
        let result = try run(
            ["squeue", "--noheader", "--user=\(Self.userName)", "--array", "--states=all", "--format=%F|%K|%T|%r"])
        var queue = SlurmQueue()
        for line in result.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard fields.count >= 4, let job = Int(fields[0]) else { continue }
            let status = SlurmJobStatus(state: fields[2], reason: fields[3])
            if let index = Int(fields[1]) {
                queue.elements[SlurmJobRef(job: job, index: index)] = status
            } else {
                // `N/A`: an array none of whose elements ever started, listed once (cancelled while pending).
                queue.arrays[job] = status
            }
        }
        return queue
    }

    /// `scancel` for these jobs (`--quiet`: a job already finished is not an error; `signal`
    /// only signals them, e.g. `KILL` before a cancel that should not wait out `KillWait`).
    public func cancel(_ refs: [SlurmJobRef], signal: String? = nil) throws(SlurmCommandError) {
        // Slurm takes hundreds of ids per call; keep each command line modest.
        for start in stride(from: 0, to: refs.count, by: 500) {
            let chunk = refs[start..<min(refs.count, start + 500)].map(\.description)
            _ = try run(["scancel", "--quiet"] + (signal.map { ["--signal=\($0)", "--full"] } ?? []) + chunk)
        }
    }

    /// The exit status and signal of a finished job, from `scontrol show job` (nil once the
    /// controller has forgotten the job).
    public func exitCode(_ ref: SlurmJobRef) -> (status: Int32, signal: Int32)? {
        guard let result = try? run(["scontrol", "--oneliner", "show", "job", ref.description]) else { return nil }
        for field in result.split(whereSeparator: { $0 == " " || $0 == "\n" })
        where field.hasPrefix("ExitCode=") {
            let pair = field.dropFirst("ExitCode=".count).split(separator: ":")
            guard pair.count == 2, let status = Int32(pair[0]), let signal = Int32(pair[1]) else { return nil }
            return (status, signal)
        }
        return nil
    }

    /// `scontrol show config`: the cluster's settings, as key → value.
    public func configuration() throws(SlurmCommandError) -> [String: String] {
        let result = try run(["scontrol", "show", "config"])
        var values: [String: String] = [:]
        for line in result.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[line[..<equals].trimmingCharacters(in: .whitespaces)] =
                line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        return values
    }

    /// The cluster's node names (`sinfo`).
    public func nodes() throws(SlurmCommandError) -> [String] {
        let result = try run(["sinfo", "--noheader", "--Node", "--format=%N"])
        return Array(Set(result.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }))
            .filter { !$0.isEmpty }.sorted()
    }

    /// Runs a Slurm command to its end. Its own process group, so a Ctrl-C meant for the
    /// coordinator does not kill a submission halfway.
    /// - Returns: its standard output.
    func run(_ arguments: [String]) throws(SlurmCommandError) -> String {
        let name = arguments[0]
        let result: CommandResult
        do {
            result = try CommandResult.run(arguments)
        } catch {
            throw SlurmCommandError(command: name, message: "\(error)")
        }
        guard result.status == 0 else {
            let message = result.errors.isEmpty ? result.output : result.errors
            throw SlurmCommandError(
                command: name,
                message: message.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(
                    of: "\n", with: "; ")
                    + " (exit status \(result.status))")
        }
        return result.output
    }
}

/// A short command's exit status and output, collected without libdispatch (see
/// `ChildMonitor` for why): pipes read with `poll`, the child reaped with `waitpid`.
struct CommandResult {
    var status: Int32
    var output: String
    var errors: String

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ arguments: [String]) throws(SpawnError) -> CommandResult {
        var output: [Int32] = [0, 0]
        var errors: [Int32] = [0, 0]
        guard ProcessLauncher.makePipe(&output) else { throw SpawnError(description: "cannot create a pipe") }
        guard ProcessLauncher.makePipe(&errors) else {
            close(output[0])
            close(output[1])
            throw SpawnError(description: "cannot create a pipe")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        var attributes = ProcessLauncher.spawnAttributes(newProcessGroup: true)
        defer { posix_spawnattr_destroy(&attributes) }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        close(output[1])
        close(errors[1])
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            throw SpawnError(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        var collected: [[UInt8]] = [[], []]
        var descriptors = [
            pollfd(fd: output[0], events: Int16(POLLIN), revents: 0),
            pollfd(fd: errors[0], events: Int16(POLLIN), revents: 0),
        ]
        var open = 2
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open > 0 {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for slot in 0..<2 where descriptors[slot].fd >= 0 && descriptors[slot].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(descriptors[slot].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    collected[slot] += buffer[0..<count]
                } else if count == 0 || errno != EINTR {
                    close(descriptors[slot].fd)
                    descriptors[slot].fd = -1
                    open -= 1
                }
            }
        }
        for slot in 0..<2 where descriptors[slot].fd >= 0 { close(descriptors[slot].fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandResult(
            status: code, output: String(decoding: collected[0], as: UTF8.self),
            errors: String(decoding: collected[1], as: UTF8.self))
    }
}

/// What a Slurm run checks before submitting anything: `sbatch` exists, the controller answers,
/// and the output directory and the `sluice` binary are on storage the compute nodes can see.
public struct SlurmCluster: Sendable {
    /// Most elements per job array: the config's `max_array_size`, at most the cluster's.
    public var maxArraySize: Int
    public var nodes: [String]
    public var summary: String

    public static func check(settings: ExecutorSettings.Slurm, output: String, executable: String) throws
        -> SlurmCluster
    {
        guard SlurmClient.sbatchPath() != nil else {
            throw PipelineError(
                .config,
                "--executor slurm: sbatch is not on the PATH; run sluice on a machine that submits Slurm jobs (a login node), or load Slurm (module load slurm)"
            )
        }
        let client = SlurmClient()
        let values: [String: String]
        do {
            values = try client.configuration()
        } catch {
            let conf = ProcessInfo.processInfo.environment["SLURM_CONF"].map { " (SLURM_CONF=\($0))" } ?? ""
            throw PipelineError(.config, "--executor slurm: cannot reach the Slurm controller\(conf): \(error.message)")
        }
        // Indices run from 0 to MaxArraySize - 1.
        let clusterLimit = values["MaxArraySize"].flatMap { Int($0) } ?? 1001
        let nodes = (try? client.nodes()) ?? []
        let here = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        if nodes.contains(where: { $0 != here }) {
            for (what, path) in [("the output directory", output), ("the sluice binary", executable)] {
                if let reason = localOnlyReason(path) {
                    throw PipelineError(
                        .config,
                        "--executor slurm: \(what) \(path) is \(reason), which the cluster's other nodes (\(nodes.prefix(3).joined(separator: ", "))\(nodes.count > 3 ? ", …" : "")) cannot see; use a path on a shared file system"
                            + (what == "the sluice binary" ? " (--worker-binary)" : " (--out)"))
                }
            }
        }
        let limit = min(settings.maxArraySize ?? clusterLimit, clusterLimit)
        let partition = settings.partition ?? "default partition"
        return SlurmCluster(
            maxArraySize: max(1, limit), nodes: nodes,
            summary: "\(partition), \(nodes.count) node(s), arrays of up to \(limit)")
    }

    /// Why `path` lives on this machine only (a tmpfs, or a folder that is local by convention), or nil.
    static func localOnlyReason(_ path: String) -> String? {
        var info = statfs()
        var probe = path
        while statfs(probe, &info) != 0 {
            let parent = (probe as NSString).deletingLastPathComponent
            if parent == probe || parent.isEmpty { break }
            probe = parent
        }
        if info.f_type == 0x0102_1994 { return "on a tmpfs (memory of this machine)" }
        for prefix in ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/"] where (path + "/").hasPrefix(prefix) {
            return "under \(prefix), a folder local to each machine"
        }
        return nil
    }
}
