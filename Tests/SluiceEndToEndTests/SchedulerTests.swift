import Foundation
import SluiceIO
import SluiceIngest
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The mixed corpus plus a dozen text files, through every stage: windows shuffled, a small
/// torch-initialized embedding, several shards — enough tasks for workers to overlap.
func fullPipelineConfig(_ directory: TemporaryDirectory) throws -> String {
    let corpus = try makeMixedCorpus(directory)
    for index in 0..<12 {
        try directory.write(
            "corpus/extra/\(index).txt", String(repeating: "Extra text number \(index), for windows. ", count: 60))
    }
    return try writeConfig(
        directory,
        """
        {"inputs": ["\(corpus)"], "ingest": {"part_bytes": 6000},
         "tokenizer": {"vocab": "\(vocabDirectory)/encoder.json", "merges": "\(vocabDirectory)/vocab.bpe",
                       "document_separator": "<|endoftext|>"},
         "window": {"max_length": 16, "stride": 12, "batch_size": 4, "shuffle": true, "seed": 7},
         "embedding": {"output_dim": 8, "init": "torch", "seed": 123, "dtype": "bfloat16"},
         "shards": {"target_bytes": 20000}}
        """)
}

/// A `sluice run` in the background, so a test can signal it or its workers.
final class BackgroundRun {
    let process = Process()
    let log: String

    init(_ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: SluiceBinary.path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// The worker processes running right now.
    var children: [pid_t] {
        let tasks =
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/task")) ?? []
        return tasks.flatMap { task -> [pid_t] in
            let text =
                (try? String(
                    contentsOfFile: "/proc/\(process.processIdentifier)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { pid_t($0) }
        }
    }

    func wait() -> (status: Int32, output: String) {
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}

/// Every completion record under `out` names a file that is whole: its size and SHA-256 match.
/// (What "no partial file under a final name" means for each kind of output.)
func checkCompletedFilesAreWhole(_ out: String, _ note: String) throws {
    let fileManager = FileManager.default
    for directory in ["docs", "tokens"] {
        for sidecar in ((try? fileManager.contentsOfDirectory(atPath: out + "/" + directory)) ?? []).filter({
            $0.hasSuffix(".json")
        }) {
            let record = try JSONNode.parse(
                Array(try Data(contentsOf: URL(fileURLWithPath: out + "/\(directory)/\(sidecar)"))))
            let part = out + "/\(directory)/" + sidecar.replacingOccurrences(of: ".json", with: ".lz4")
            #expect(try SHA256Hasher.hex(ofFile: part) == record["sha256"]?.string, "\(note): \(directory)/\(sidecar)")
        }
    }
    for record in ((try? fileManager.contentsOfDirectory(atPath: out + "/_work/shards")) ?? []).filter({
        $0.hasSuffix(".json")
    }) {
        let node = try JSONNode.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: out + "/_work/shards/" + record))))
        let file = try #require(node["shard"]?["file"]?.string)
        #expect(try SHA256Hasher.hex(ofFile: out + "/" + file) == node["shard"]?["sha256"]?.string, "\(note): \(file)")
    }
}

/// Names of processes whose command line mentions `marker` (left-over workers).
func processes(mentioning marker: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.filter { Int($0) != nil && Int32($0) != getpid() }.compactMap { pid in
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let command = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return command.contains(marker) && command.contains("worker") ? "\(pid): \(command)" : nil
    }
}

/// A stand-in for the sluice binary the workers run (`sluice run --worker-binary`): for tasks
/// whose id starts with `task`, runs the shell snippet `before` first (it may fake a fault or
/// slow the task down), then the real sluice. The shipped binary has no test hooks.
func workerWrapper(_ directory: TemporaryDirectory, task: String, before: String) throws -> String {
    let path = directory.path("wrapper-\(abs(task.hashValue))-\(abs(before.hashValue)).sh")
    let script = """
        #!/bin/sh
        SLUICE='\(SluiceBinary.path)'
        case " $* " in *" --task \(task)"*)
        \(before)
        ;; esac
        exec "$SLUICE" "$@"

        """
    try Data(script.utf8).write(to: URL(fileURLWithPath: path))
    guard chmod(path, 0o755) == 0 else { throw ShellError(description: "chmod \(path) failed") }
    return path
}

/// Waits until the run's `--log json` output says a task of `stage` has started.
func waitForStart(of stage: String, in log: String, while run: BackgroundRun, timeout: Double = 120) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline && run.process.isRunning {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            guard let event = try? JSONNode.parse(Array(line.utf8)), event["event"]?.string == "started",
                event["task"]?.string?.hasPrefix(stage) == true
            else { continue }
            return true
        }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return false
}

@Suite("scheduler: worker processes, retries, signals, resume", .serialized)
struct SchedulerTests {
    @Test("the full pipeline is byte-identical for 1, 2 and 4 workers; report.json times each stage")
    func fullPipelineAnyWorkerCount() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        var outputs: [[String: [UInt8]]] = []
        for workers in [1, 2, 4] {
            let out = directory.path("out-\(workers)")
            let result = try SluiceBinary.run(["run", config, "--out", out, "--workers", String(workers)])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append(try outputFiles(out))
        }
        #expect(outputs[0].keys.filter { $0.hasPrefix("shards/") }.count >= 3)
        #expect(outputs[0].keys.filter { $0.hasPrefix("docs/part-") }.count >= 4)
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0] == outputs[2])
        #expect(try SluiceBinary.run(["verify", directory.path("out-2")]).status == 0)
        let report = try JSONNode.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: directory.path("out-4") + "/report.json"))))
        for stage in ["ingest", "tokenize", "window", "materialize"] {
            let timing = report["timing"]?["stages"]?[stage]
            #expect(timing?["tasks"]?.integer ?? 0 >= 1, "\(stage)")
            #expect(timing?["peak_rss_bytes"]?.integer ?? 0 > 1 << 20, "\(stage)")
        }
        #expect(report["timing"]?["workers"]?.integer == 4)
        let plan = try String(contentsOfFile: directory.path("out-1") + "/_work/plan.json", encoding: .utf8)
        #expect(plan.contains("\"materialize/shard-00002\""))
    }

    @Test("SIGINT stops the workers and exits 130; a resume with another worker count ends byte-identical")
    func interruptAndResume() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        let started = Date()
        #expect(try SluiceBinary.run(["run", config, "--out", reference, "--workers", "2"]).status == 0)
        let runSeconds = Date().timeIntervalSince(started)
        let expected = try outputFiles(reference)
        var interrupted = 0
        for trial in 0..<3 {
            let out = directory.path("out-\(trial)")
            let run = try BackgroundRun(
                ["run", config, "--out", out, "--workers", "2"], log: directory.path("log-\(trial)"))
            Thread.sleep(forTimeInterval: runSeconds * Double(trial + 1) / 5)
            kill(run.process.processIdentifier, SIGINT)
            let (status, output) = run.wait()
            if status == 130 {
                interrupted += 1
                #expect(output.contains("interrupted by SIGINT"), "\(output)")
            } else {
                #expect(status == 0, "\(output)")
            }
            Thread.sleep(forTimeInterval: 0.2)
            #expect(processes(mentioning: out).isEmpty, "workers outlived the coordinator")
            try checkCompletedFilesAreWhole(out, "trial \(trial)")
            let resumed = try SluiceBinary.run(["run", config, "--out", out, "--workers", "3"])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try outputFiles(out) == expected, "trial \(trial)")
        }
        #expect(interrupted >= 1, "no trial was interrupted mid-run")
    }

    @Test("a SIGINT while the run is still being planned is held: the run stops as soon as it starts, exit 130")
    func interruptWhilePlanning() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let out = directory.path("out")
        let run = try BackgroundRun(["run", config, "--out", out, "--workers", "2"], log: directory.path("log"))
        // Before any task, the run loads GPT-2's encoder.json and vocab.bpe to check them: about
        // a second in a debug build, so the signal lands before the executor has its handler.
        Thread.sleep(forTimeInterval: 0.3)
        kill(run.process.processIdentifier, SIGINT)
        let (status, output) = run.wait()
        #expect(status == 130, "\(output)")
        #expect(output.contains("interrupted by SIGINT"), "\(output)")
        Thread.sleep(forTimeInterval: 0.2)
        #expect(processes(mentioning: out).isEmpty, "workers outlived the coordinator")
        #expect(try SluiceBinary.run(["run", config, "--out", out]).status == 0)
    }

    @Test("kill -9 of a random worker at random moments: the task is retried and the output is byte-identical")
    func killWorkers() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        let started = Date()
        #expect(try SluiceBinary.run(["run", config, "--out", reference]).status == 0)
        let runSeconds = Date().timeIntervalSince(started)
        let expected = try outputFiles(reference)
        var killed = 0
        var retried = 0
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<10 {
            let out = directory.path("out-\(trial)")
            let run = try BackgroundRun(
                ["run", config, "--out", out, "--log", "text"], log: directory.path("log-\(trial)"))
            var victim: pid_t?
            let deadline = Date().addingTimeInterval(Double.random(in: 0.05...(runSeconds * 0.9), using: &generator))
            while Date() < deadline || victim == nil && run.process.isRunning && Date() < deadline + runSeconds {
                if Date() >= deadline, let child = run.children.randomElement(using: &generator) { victim = child }
                Thread.sleep(forTimeInterval: 0.005)
            }
            if let victim, kill(victim, SIGKILL) == 0 { killed += 1 }
            let (status, output) = run.wait()
            #expect(status == 0, "trial \(trial): \(output)")
            if output.contains("was killed by signal 9; retrying") { retried += 1 }
            #expect(try outputFiles(out) == expected, "trial \(trial)")
        }
        #expect(killed >= 5, "only \(killed) of 10 trials found a worker to kill")
        // (A worker that had just exited can still be signalled, so not every kill is a retry.)
        #expect(retried >= 3, "only \(retried) of 10 trials retried a killed task")
    }

    @Test("kill -9 of the coordinator at random moments: workers exit too, nothing partial, resume is byte-identical")
    func killCoordinator() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        let started = Date()
        #expect(try SluiceBinary.run(["run", config, "--out", reference]).status == 0)
        let runSeconds = Date().timeIntervalSince(started)
        let expected = try outputFiles(reference)
        let out = directory.path("out")
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<10 {
            let run = try BackgroundRun(
                ["run", config, "--out", out, "--workers", String(1 + trial % 3)], log: directory.path("log-\(trial)"))
            Thread.sleep(forTimeInterval: Double.random(in: 0...runSeconds, using: &generator))
            kill(run.process.processIdentifier, SIGKILL)
            _ = run.wait()
            // The lifeline: orphaned workers notice and exit at once.
            var survivors = processes(mentioning: out)
            for _ in 0..<40 where !survivors.isEmpty {
                Thread.sleep(forTimeInterval: 0.05)
                survivors = processes(mentioning: out)
            }
            #expect(survivors.isEmpty, "trial \(trial): \(survivors)")
            try checkCompletedFilesAreWhole(out, "trial \(trial)")
        }
        let resumed = try SluiceBinary.run(["run", config, "--out", out, "--workers", "3"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try outputFiles(out) == expected)
        let hidden = try FileManager.default.subpathsOfDirectory(atPath: out).filter {
            ($0 as NSString).lastPathComponent.hasPrefix(".")
        }
        #expect(hidden.isEmpty, "temporary files left: \(hidden)")
    }

    @Test("Ctrl-C in every stage stops the run with 130, no worker left; the same command resumes byte-identical")
    func interruptEveryStage() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        #expect(try SluiceBinary.run(["run", config, "--out", reference, "--workers", "2"]).status == 0)
        let expected = try outputFiles(reference)
        for stage in ["ingest/", "tokenizer", "tokenize/", "window", "materialize/", "finalize"] {
            let out = directory.path("out-\(stage.filter(\.isLetter))")
            // The stage's tasks take long enough to be caught running: they become a 30 s sleep,
            // which only the coordinator's SIGTERM ends early.
            let slow = try workerWrapper(directory, task: stage, before: "exec sleep 30")
            let log = directory.path("log-\(stage.filter(\.isLetter))")
            let run = try BackgroundRun(
                ["run", config, "--out", out, "--workers", "2", "--log", "json", "--worker-binary", slow], log: log)
            #expect(waitForStart(of: stage, in: log, while: run), "\(stage): never started")
            let interrupted = Date()
            kill(run.process.processIdentifier, SIGINT)
            let (status, output) = run.wait()
            #expect(status == 130, "\(stage): \(output)")
            #expect(Date().timeIntervalSince(interrupted) < 15, "\(stage): the running tasks were not stopped")
            #expect(output.contains("interrupted by SIGINT"), "\(stage): \(output)")
            #expect(!FileManager.default.fileExists(atPath: out + "/manifest.json"), "\(stage)")
            Thread.sleep(forTimeInterval: 0.2)
            #expect(processes(mentioning: out).isEmpty, "\(stage): workers outlived the coordinator")
            try checkCompletedFilesAreWhole(out, stage)
            let resumed = try SluiceBinary.run(["run", config, "--out", out, "--workers", "3"])
            #expect(resumed.status == 0, "\(stage): \(resumed.stderr)")
            #expect(try outputFiles(out) == expected, "\(stage)")
        }
    }

    @Test("an I/O failure inside a stage (a read of the window file fails) is retried, and the run ends identical")
    func wrappedIOFailureIsRetried() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        #expect(try SluiceBinary.run(["run", config, "--out", reference]).status == 0)
        let out = directory.path("out")
        let marker = directory.path("failed-once")
        // The first attempt of shard 0 finds a directory where the window file was: read() fails
        // with EISDIR inside MaterializeStage, which wraps it in a PipelineError.
        let faulty = try workerWrapper(
            directory, task: "materialize/shard-00000",
            before: """
                if [ ! -e '\(marker)' ]; then touch '\(marker)'
                  W='\(out)/_work/windows.i64'; mv "$W" "$W.aside"; mkdir "$W"
                  "$SLUICE" "$@"; status=$?; rmdir "$W"; mv "$W.aside" "$W"; exit $status
                fi
                """)
        let result = try SluiceBinary.run(["run", config, "--out", out, "--log", "text", "--worker-binary", faulty])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains("materialize/shard-00000: attempt 1 exited with status 75; retrying"),
            "\(result.stderr)")
        #expect(result.stderr.contains("windows.i64"), "\(result.stderr)")
        #expect(try outputFiles(out) == (try outputFiles(reference)))
        // The worker alone: the same fault is exit status 75 (retry may help), naming the file.
        try FileManager.default.removeItem(atPath: out + "/_work/shards/shard-00000.json")
        try FileManager.default.moveItem(atPath: out + "/_work/windows.i64", toPath: out + "/windows.aside")
        try FileManager.default.createDirectory(atPath: out + "/_work/windows.i64", withIntermediateDirectories: false)
        let worker = try SluiceBinary.run(["worker", "--task", "materialize/shard-00000", out])
        #expect(worker.status == 75, "\(worker.stderr)")
        #expect(worker.stderr.contains("_work/windows.i64"), "\(worker.stderr)")
    }

    @Test("configs that differ only in workers, retries and output give identical manifests and outputs")
    func executionOnlyKeysChangeNothing() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let other = try writeConfig(
            directory, name: "other.json",
            text.replacingOccurrences(
                of: "{\"inputs\"", with: "{\"workers\": 2, \"retries\": 7, \"output\": \"elsewhere\", \"inputs\""))
        #expect(try SluiceBinary.run(["config", "check", other]).status == 0)
        #expect(try SluiceBinary.run(["run", config, "--out", directory.path("a"), "--workers", "1"]).status == 0)
        #expect(try SluiceBinary.run(["run", other, "--out", directory.path("b")]).status == 0)
        let manifests = try ["a", "b"].map {
            try Data(contentsOf: URL(fileURLWithPath: directory.path($0) + "/manifest.json"))
        }
        #expect(manifests[0] == manifests[1])
        #expect(try outputFiles(directory.path("a")) == (try outputFiles(directory.path("b"))))
    }

    @Test("changing only window.batch_size reruns without --force: ingest and tokenize are all reused")
    func windowChangeReusesTokens() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let out = directory.path("out")
        #expect(try SluiceBinary.run(["run", config, "--out", out]).status == 0)
        let changed = try writeConfig(
            directory, name: "changed.json",
            try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(
                of: "\"batch_size\": 4", with: "\"batch_size\": 3"))
        let rerun = try SluiceBinary.run(["run", changed, "--out", out])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let report = try JSONNode.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))))
        let stages = report["timing"]?["stages"]
        for stage in ["ingest", "tokenizer", "tokenize"] {
            #expect(stages?[stage]?["tasks"]?.integer == 0, "\(stage) was redone")
            #expect(stages?[stage]?["reused"]?.integer ?? 0 >= 1, "\(stage)")
        }
        #expect(stages?["ingest"]?["reused"]?.integer ?? 0 >= 4)
        #expect(stages?["window"]?["tasks"]?.integer == 1)
        #expect(stages?["materialize"]?["tasks"]?.integer ?? 0 >= 1)
        let fresh = directory.path("fresh")
        #expect(try SluiceBinary.run(["run", changed, "--out", fresh]).status == 0)
        #expect(try outputFiles(out) == (try outputFiles(fresh)))
        // And back: the window task is redone, the tokens are still reused.
        let back = try SluiceBinary.run(["run", config, "--out", out, "--log", "text"])
        #expect(back.status == 0)
        #expect(back.stderr.contains("tokenize part-00000: already done"), "\(back.stderr)")
    }

    @Test("a task that crashes on every attempt stops the run naming it; the rest stays, and a re-run completes")
    func taskCrashesEveryTime() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        #expect(try SluiceBinary.run(["run", config, "--out", reference]).status == 0)
        let out = directory.path("out")
        let crashing = try workerWrapper(directory, task: "tokenize/part-00001", before: "kill -9 $$")
        let run = try BackgroundRun(
            ["run", config, "--out", out, "--log", "text", "--worker-binary", crashing], log: directory.path("log"))
        let (status, output) = run.wait()
        #expect(status == 1)
        #expect(output.contains("task tokenize/part-00001 (reads docs/part-00001.lz4)"), "\(output)")
        #expect(output.contains("killed by signal 9 on all 3 attempt(s)"), "\(output)")
        #expect(output.components(separatedBy: "tokenize/part-00001: attempt").count - 1 == 2, "\(output)")
        #expect(!FileManager.default.fileExists(atPath: out + "/manifest.json"))
        #expect(!FileManager.default.fileExists(atPath: out + "/tokens/part-00001.json"))
        #expect(FileManager.default.fileExists(atPath: out + "/docs/part-00001.json"))
        try checkCompletedFilesAreWhole(out, "after the failure")
        let again = try SluiceBinary.run(["run", config, "--out", out])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("ingest part-00001: already done"))
        #expect(try outputFiles(out) == (try outputFiles(reference)))
    }

    @Test("a full disk is a clear error naming the task; nothing corrupt stays, and with space the run resumes")
    func fullDisk() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let reference = directory.path("reference")
        #expect(try SluiceBinary.run(["run", config, "--out", reference]).status == 0)
        let mountPoint = directory.path("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        // A 1 MiB tmpfs: the rank file, docs and tokens fit; the tables (50257 × 8 float32 =
        // 1.6 MB) do not.
        guard (try Shell.run("mount -t tmpfs -o size=1m sluice-test '\(mountPoint)'")).status == 0 else {
            print("note: cannot mount a tmpfs here (not root?); the full-disk test did not run")
            return
        }
        defer { _ = try? Shell.run("umount '\(mountPoint)'") }
        let out = mountPoint + "/out"
        // --force skips the up-front free-space refusal, so the disk really fills.
        let result = try SluiceBinary.run(["run", config, "--out", out, "--retries", "0", "--log", "text", "--force"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
        #expect(result.stderr.contains("task window"), "\(result.stderr)")
        try checkCompletedFilesAreWhole(out, "full disk")
        #expect(!FileManager.default.fileExists(atPath: out + "/manifest.json"))
        // Give it room; the same command finishes the job.
        #expect((try Shell.run("mount -o remount,size=64m '\(mountPoint)'")).status == 0)
        let resumed = try SluiceBinary.run(["run", config, "--out", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try outputFiles(out) == (try outputFiles(reference)))
    }

    @Test("a JSONL file larger than part_bytes becomes several tasks; the documents are the same as one task's")
    func largeJSONLIsSliced() throws {
        let directory = try TemporaryDirectory()
        var text = ""
        for index in 0..<200 { text += "{\"text\": \"record number \(index) of a large file\"}\n" }
        text += "{broken\n"
        _ = try directory.write("corpus/big.jsonl", text)
        _ = try directory.write("corpus/small.txt", "a small text\n")
        func documents(partBytes: Int) throws -> (documents: [[UInt8]], parts: Int, report: String) {
            let out = directory.path("out-\(partBytes)")
            let config = try writeConfig(
                directory, name: "p\(partBytes).json",
                "{\"inputs\": [\"corpus\"], \"ingest\": {\"part_bytes\": \(partBytes)}}")
            let result = try SluiceBinary.run(["run", config, "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            var all: [[UInt8]] = []
            var part = 0
            while FileManager.default.fileExists(atPath: out + "/docs/part-\(String(format: "%05d", part)).lz4") {
                let reader = try DocsPart.Reader(path: out + "/docs/part-\(String(format: "%05d", part)).lz4")
                while let document = try reader.next() { all.append(document) }
                part += 1
            }
            return (all, part, try String(contentsOfFile: out + "/report.json", encoding: .utf8))
        }
        let whole = try documents(partBytes: 1 << 20)
        let sliced = try documents(partBytes: 1000)
        #expect(whole.parts == 1)
        #expect(sliced.parts >= 8)
        #expect(sliced.documents == whole.documents)
        #expect(sliced.documents.count == 201)
        for report in [whole.report, sliced.report] {
            #expect(report.contains("\"input_files\" : 2"))
            #expect(report.contains("\"malformed_jsonl\""))
        }
        let plan = try SluiceBinary.run(["plan", directory.path("p1000.json"), "--json"])
        // The task of the second slice reads bytes 1000 ..< 2000 of the file, and only those.
        let slice = plan.stdoutText.split(separator: "\n").first { $0.contains("\"id\":\"ingest/part-00001\"") }
        #expect(slice?.contains("\"byteRange\":[1000,2000]") == true, "\(plan.stdoutText)")
        #expect(slice?.contains("\"name\":\"corpus/big.jsonl\"") == true, "\(plan.stdoutText)")
    }

    @Test("--log json: one JSON object per line, a started and a finished event for every task, with CPU and RSS")
    func jsonLog() throws {
        let directory = try TemporaryDirectory()
        let config = try fullPipelineConfig(directory)
        let result = try SluiceBinary.run(["run", config, "--out", directory.path("out"), "--log", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        var started: Set<String> = []
        var finished: [String: JSONNode] = [:]
        for line in result.stderr.split(separator: "\n") {
            let event = try JSONNode.parse(Array(line.utf8))
            let task = event["task"]?.string
            switch event["event"]?.string {
            case "started": started.insert(try #require(task))
            case "finished": finished[try #require(task)] = event
            case "log", "progress": break
            default: Issue.record("unexpected event: \(line)")
            }
        }
        let plan = try JSONNode.parse(
            Array(try Data(contentsOf: URL(fileURLWithPath: directory.path("out") + "/_work/plan.json"))))
        guard case .array(let tasks)? = plan["tasks"]?.value else {
            Issue.record("no tasks in plan.json")
            return
        }
        let ids = Set(tasks.compactMap { $0["id"]?.string })
        #expect(ids.count >= 15)
        #expect(started == ids)
        #expect(Set(finished.keys) == ids)
        for (task, event) in finished {
            #expect(event["peak_rss_bytes"]?.integer ?? 0 > 1 << 20, "\(task)")
            #expect(event["message"]?.string?.isEmpty == false, "\(task)")
        }
    }

    @Test("a failure that a retry cannot fix (bad input under on_bad_input \"fail\") stops at once, naming the line")
    func permanentFailureIsNotRetried() throws {
        let directory = try TemporaryDirectory()
        _ = try directory.write("corpus/a.jsonl", "{\"text\": \"fine\"}\nnot json\n")
        let config = try writeConfig(
            directory, "{\"inputs\": [\"corpus\"], \"ingest\": {\"on_bad_input\": \"fail\"}}")
        let result = try SluiceBinary.run(["run", config, "--out", directory.path("out"), "--log", "text"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("task ingest/part-00000"), "\(result.stderr)")
        #expect(result.stderr.contains("not retried"), "\(result.stderr)")
        #expect(result.stderr.contains("a.jsonl:2"), "\(result.stderr)")
        #expect(!result.stderr.contains("retrying"), "\(result.stderr)")
    }
}
