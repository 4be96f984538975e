import Foundation
import SluiceBPE
import SluiceConfig
import SluiceIO
import SluiceIngest

/// Why a task or a run could not go on: one paragraph naming the file or task and what to do,
/// and — decided where the failure is understood, not from its Swift type further up — whether
/// running the same task again can help. A worker's exit status comes from this alone
/// (`WorkerExit.status(for:)`), and executors retry on that status.
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The config or command line asks for something that cannot be done.
        case config
        /// An input refused under the ingest policy (`on_bad_input: "fail"`).
        case badInput = "bad_input"
        /// The vocabulary does not load, or training cannot reach the asked size.
        case tokenizer
        /// A file a task reads is not there: an upstream task has not run.
        case missingInput = "missing_input"
        /// An output no longer matches its completion record: a rerun redoes it.
        case damagedOutput = "damaged_output"
        /// Reading or writing failed (disk full, a file that vanished, an NFS hiccup).
        case io
        /// A fault of Sluice itself.
        case `internal`
    }

    public var code: Code
    public var message: String
    /// The task that failed, once known.
    public var task: TaskID?
    /// The file the failure is about, when there is one.
    public var path: String?
    /// The error this wraps (an `IOError`, `ConfigError`, …), for callers that look deeper.
    public var underlying: (any Error & Sendable)?
    /// Whether running the same task again can succeed (the executors retry only these).
    public var isRetryable: Bool

    public init(
        _ code: Code, _ message: String, path: String? = nil, underlying: (any Error & Sendable)? = nil,
        retryable: Bool? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.underlying = underlying
        self.isRetryable = retryable ?? (code == .io)
    }

    public var description: String { message }

    /// `error` as a pipeline error: itself, or a library error classified by what it means.
    public static func classify(_ error: any Error) -> PipelineError {
        switch error {
        case let error as PipelineError:
            return error
        case let error as IOError:
            return io(error)
        case let error as ConfigError:
            return PipelineError(.config, error.description, path: error.file, underlying: error)
        case let error as IngestError:
            return PipelineError(.badInput, error.description, path: error.file, underlying: error)
        case let error as BPEError:
            return PipelineError(.tokenizer, "tokenizer: \(error)", underlying: error)
        case let error as CocoaError:
            let path = error.filePath ?? error.url?.path
            return PipelineError(
                .io, (path.map { "\($0): " } ?? "") + error.localizedDescription, path: path, underlying: error)
        default:
            return PipelineError(.internal, "\(error)")
        }
    }

    /// An `IOError`: failing to open, read, write or rename may pass (a full disk gets room, a
    /// file on a network share comes back); data that does not decode will not.
    public static func io(_ error: IOError) -> PipelineError {
        switch error.code {
        case .cannotOpen, .cannotRead, .cannotWrite, .cannotRename, .compression:
            return PipelineError(.io, error.description, path: error.path, underlying: error)
        case .decompression, .truncated, .checksumMismatch, .malformedJSON:
            return PipelineError(
                .damagedOutput, error.description + "; run again — a task whose output is damaged is redone",
                path: error.path, underlying: error)
        }
    }

    /// A failed system call on `path`, with errno's text: retryable.
    static func system(_ what: String, path: String, errno number: Int32 = errno) -> PipelineError {
        PipelineError(.io, "\(path): \(what): \(String(cString: strerror(number)))", path: path)
    }
}

/// A worker's exit status: what executors decide retries on.
public enum WorkerExit {
    public static let done: Int32 = 0
    /// A failure that running the task again cannot fix (bad input, config, vocabulary).
    public static let permanent: Int32 = 65
    /// A failure that may pass (I/O); like a crash or a signal, it is retried.
    public static let retryable: Int32 = 75

    public static func status(for error: PipelineError) -> Int32 {
        error.isRetryable ? retryable : permanent
    }
}
