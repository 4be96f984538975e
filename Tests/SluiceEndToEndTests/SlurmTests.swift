import Foundation
import SluiceIO
import SluicePipeline
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The loopback cluster of `scripts/slurm-cluster.sh up`, found through `SLURM_CONF` as every
/// Slurm command finds its cluster.
enum LoopbackSlurm {
    static let available: Bool = {
        guard SlurmClient.sbatchPath() != nil, let result = try? Shell.run("sinfo --noheader --format=%T 2>/dev/null")
        else { return false }
        return result.status == 0
            && result.stdoutText.split(separator: "\n").contains { ["idle", "mixed", "allocated"].contains($0) }
    }()

    /// `scripts/dev test` sets it: there a missing cluster is a failure, not a skip.
    static var required: Bool { ProcessInfo.processInfo.environment["SLUICE_REQUIRE_SLURM"] == "1" }

    /// The caller's unfinished jobs named `<name>-…`, by state (`RUNNING` → their names and ids).
    static func jobs(named name: String) throws -> [String: [String]] {
        let result = try Shell.run([
            "/usr/bin/env", "squeue", "--noheader", "--me", "--array", "--states=all", "--format=%j|%i|%T",
        ])
        var states: [String: [String]] = [:]
        for line in result.stdoutText.split(separator: "\n") {
            let fields = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 3, fields[0].hasPrefix(name + "-"),
                !SlurmJobStatus(state: fields[2], reason: "").isFinal
            else { continue }
            states[fields[2], default: []].append(fields[0] + " " + fields[1])
        }
        return states
    }

    /// Waits until a job named `<name>-<stage>` is RUNNING; its id.
    static func waitForRunning(_ name: String, stage: String, timeout: Double = 120) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let job = try jobs(named: name)["RUNNING"]?.first(where: { $0.hasPrefix("\(name)-\(stage) ") }) {
                return String(job.split(separator: " ")[1])
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }
}

/// `fullPipelineConfig` with an `executor` section: jobs named `<jobName>-<stage>`, squeue
/// polled every 200 ms. Execution-only, so the output is the same as any local run's.
func slurmConfig(_ directory: TemporaryDirectory, jobName: String, arraySize: Int? = nil) throws -> String {
    let local = try fullPipelineConfig(directory)
    let text = try String(contentsOfFile: local, encoding: .utf8)
    return try writeConfig(
        directory, name: "slurm.json",
        "{\"executor\": {\"kind\": \"slurm\", \"slurm\": {\"job_name\": \"\(jobName)\", \"poll_ms\": 200"
            + (arraySize.map { ", \"max_array_size\": \($0)" } ?? "") + "}},"
            + text.drop(while: { $0 != "{" }).dropFirst())
}

/// The output of a local run of `config` (the reference a Slurm run must equal).
func localReference(_ config: String, _ directory: TemporaryDirectory) throws -> [String: [UInt8]] {
    let reference = directory.path("reference")
    let result = try SluiceBinary.run(["run", config, "--executor", "local", "--out", reference])
    #expect(result.status == 0, "\(result.stderr)")
    return try outputFiles(reference)
}

@Suite(
    "Slurm executor on the loopback cluster", .serialized,
    .enabled(
        if: LoopbackSlurm.available || LoopbackSlurm.required,
        "no Slurm cluster: run scripts/slurm-cluster.sh up and export SLURM_CONF"))
struct SlurmTests {
    @Test("the cluster is up (scripts/dev test starts it)")
    func clusterIsUp() {
        #expect(LoopbackSlurm.available, "sinfo found no usable node; see scripts/slurm-cluster.sh up")
    }

    @Test(
        "a Slurm run is byte-identical to local runs with 1 and 2 workers; arrays per stage, exact dependencies, status"
    )
    func cleanRunMatchesLocal() throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-clean")
        var local: [[String: [UInt8]]] = []
        for workers in [1, 2] {
            let out = directory.path("local-\(workers)")
            let result = try SluiceBinary.run([
                "run", config, "--executor", "local", "--out", out, "--workers", "\(workers)",
            ])
            #expect(result.status == 0, "\(result.stderr)")
            local.append(try outputFiles(out))
        }
        #expect(local[0] == local[1])
        let out = directory.path("slurm")
        let result = try SluiceBinary.run(["run", config, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("Slurm ("), "\(result.stderr)")
        let slurm = try outputFiles(out)
        #expect(slurm.keys.filter { $0.hasPrefix("shards/") }.count >= 3)
        #expect(slurm == local[0])
        #expect(try SluiceBinary.run(["verify", out]).status == 0)

        let record = try StableJSON.decode(SlurmJobsRecord.self, from: out + "/_work/slurm/jobs.json")
        let byStage = Dictionary(grouping: record.submissions, by: \.stage)
        // One array per stage, each depending on exactly what its tasks read.
        #expect(byStage.values.allSatisfy { $0.count == 1 }, "\(record.submissions.map { "\($0.stage) \($0.job)" })")
        let ingest = try #require(byStage[.ingest]?.first)
        let tokenizer = try #require(byStage[.tokenizer]?.first)
        let tokenize = try #require(byStage[.tokenize]?.first)
        #expect(ingest.tasks.count >= 4 && ingest.dependency.isEmpty)
        #expect(tokenize.dependency == "aftercorr:\(ingest.job),afterok:\(tokenizer.job)")
        #expect(byStage[.window]?.first?.dependency == "afterok:\(tokenize.job)")
        let materialize = try #require(byStage[.materialize]?.first)
        #expect(materialize.tasks.count >= 3 && materialize.dependency.isEmpty, "the window job had succeeded")
        #expect(byStage[.finalize]?.first?.dependency.contains("afterok:\(materialize.job)") == true)
        for task in ingest.tasks {
            #expect(FileManager.default.fileExists(atPath: out + "/_work/logs/\(SlurmLauncher.logName(task)).events"))
        }
        let status = try SluiceBinary.run(["status", out])
        #expect(status.status == 0 && status.stdoutText.contains("complete"), "\(status.stdoutText)\(status.stderr)")
        #expect(try LoopbackSlurm.jobs(named: "t-clean").isEmpty, "jobs left in the queue")
    }

    @Test(
        "a task killed mid-run is retried as a new job, its dependents re-pointed; stages split into arrays of 3; identical output"
    )
    func killedTaskIsRetried() throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-kill", arraySize: 3)
        let expected = try localReference(config, directory)
        let marker = directory.path("killed-once")
        // The first attempt of tokenize part 1 is killed by SIGKILL while its worker runs.
        let wrapper = try workerWrapper(
            directory, task: "tokenize/part-00001",
            before: """
                if [ ! -e '\(marker)' ]; then
                    touch '\(marker)'
                    "$SLUICE" "$@" & pid=$!
                    sleep 0.05
                    kill -9 $pid
                    kill -9 $$
                fi
                """)
        let out = directory.path("slurm")
        let result = try SluiceBinary.run(["run", config, "--out", out, "--worker-binary", wrapper])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(
            result.stderr.contains("tokenize/part-00001: attempt 1 was killed by signal 9; retrying"),
            "the retry is reported: \(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(try outputFiles(out) == expected)
        let report = try JSONNode.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))))
        #expect(report["timing"]?["stages"]?["tokenize"]?["retries"]?.integer == 1)
        let record = try StableJSON.decode(SlurmJobsRecord.self, from: out + "/_work/slurm/jobs.json")
        let ingest = record.submissions.filter { $0.stage == .ingest }
        let tokenize = record.submissions.filter { $0.stage == .tokenize }
        #expect(ingest.count >= 2 && ingest.allSatisfy { $0.tasks.count <= 3 }, "split at max_array_size")
        // Split the same way: chunk c of tokenize pairs with chunk c of ingest.
        for (chunk, ingestChunk) in zip(tokenize, ingest) {
            #expect(chunk.dependency.hasPrefix("aftercorr:\(ingestChunk.job),"), "\(chunk.dependency)")
        }
        #expect(
            tokenize.count == ingest.count + 1 && tokenize.last?.tasks == [TaskID(.tokenize, 1)],
            "one new job for the retry")
        // The window job waited on the killed one: it was submitted again, on the new job.
        let window = record.submissions.filter { $0.stage == .window }
        #expect(window.count == 2, "\(window.map(\.dependency))")
        if let retry = tokenize.last, let repointed = window.last {
            #expect(repointed.dependency.contains("afterok:\(retry.job)"), "\(repointed.dependency)")
        }
        #expect(try LoopbackSlurm.jobs(named: "t-kill").isEmpty, "jobs left in the queue")
    }

    @Test("scancel of a running task stops the run naming it; the same command resumes to identical output")
    func cancelledTaskStopsTheRun() throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-scancel")
        let expected = try localReference(config, directory)
        let marker = directory.path("slept-once")
        let wrapper = try workerWrapper(
            directory, task: "window", before: "[ -e '\(marker)' ] || { touch '\(marker)'; sleep 120; }")
        let out = directory.path("slurm")
        let run = try BackgroundRun(
            ["run", config, "--out", out, "--worker-binary", wrapper], log: directory.path("log"))
        let job = try #require(try LoopbackSlurm.waitForRunning("t-scancel", stage: "window"))
        _ = try Shell.run(["/usr/bin/env", "scancel", job])
        let (status, output) = run.wait()
        #expect(status == 1, "\(output)")
        #expect(output.contains("task window") && output.contains("cancelled outside this run"), "\(output)")
        #expect(try LoopbackSlurm.jobs(named: "t-scancel").isEmpty, "the run left jobs waiting")
        let resumed = try SluiceBinary.run(["run", config, "--out", out, "--worker-binary", wrapper])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try outputFiles(out) == expected)
    }

    @Test(
        "Ctrl-C of the coordinator cancels every job it submitted and exits 130 (a second Ctrl-C: without waiting); the same command resumes",
        arguments: [1, 2])
    func interruptCancelsJobs(interrupts: Int) throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-sigint\(interrupts)")
        let expected = try localReference(config, directory)
        let wrapper = try workerWrapper(directory, task: "tokenize/part-00002", before: "sleep 120")
        let out = directory.path("slurm")
        let run = try BackgroundRun(
            ["run", config, "--out", out, "--worker-binary", wrapper], log: directory.path("log"))
        let name = "t-sigint\(interrupts)"
        _ = try #require(try LoopbackSlurm.waitForRunning(name, stage: "tokenize"))
        #expect(try LoopbackSlurm.jobs(named: name)["PENDING"]?.isEmpty == false, "jobs wait behind it")
        let interrupted = Date()
        for _ in 0..<interrupts {
            kill(run.process.processIdentifier, SIGINT)
            Thread.sleep(forTimeInterval: 0.05)
        }
        let (status, output) = run.wait()
        #expect(status == 130, "\(output)")
        #expect(Date().timeIntervalSince(interrupted) < 20, "the coordinator took too long to stop")
        #expect(output.contains("interrupted by SIGINT"), "\(output)")
        if interrupts == 1 {
            #expect(try LoopbackSlurm.jobs(named: name).isEmpty, "jobs outlived the coordinator")
        } else {
            // It did not wait for squeue to confirm: the killed jobs leave the queue within seconds.
            let deadline = Date().addingTimeInterval(10)
            while try !LoopbackSlurm.jobs(named: name).isEmpty && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.2)
            }
            #expect(try LoopbackSlurm.jobs(named: name).isEmpty, "jobs outlived the coordinator")
        }
        let resumed = try SluiceBinary.run(["run", config, "--out", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try outputFiles(out) == expected)
    }

    @Test("a submission the cluster refuses (no such partition) fails the run naming it; nothing is left queued")
    func refusedSubmission() throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-partition")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let bad = try writeConfig(
            directory, name: "bad.json",
            text.replacingOccurrences(of: "\"poll_ms\": 200", with: "\"poll_ms\": 200, \"partition\": \"nosuch\""))
        let result = try SluiceBinary.run(["run", bad, "--out", directory.path("out")])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("sbatch") && result.stderr.contains("partition"), "\(result.stderr)")
        #expect(try LoopbackSlurm.jobs(named: "t-partition").isEmpty, "jobs left in the queue")
    }

    @Test("--detach submits the coordinator as a job and exits; sluice status follows it to the end")
    func detachedRun() throws {
        try #require(LoopbackSlurm.available)
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-detach")
        let expected = try localReference(config, directory)
        let out = directory.path("slurm")
        let submitted = try SluiceBinary.run(["run", config, "--out", out, "--detach"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(submitted.stdoutText.contains("submitted the coordinator as Slurm job"), "\(submitted.stdoutText)")
        var status = try SluiceBinary.run(["status", out])
        #expect(status.stdoutText.contains("coordinator job"), "\(status.stdoutText)")
        let deadline = Date().addingTimeInterval(240)
        while status.status != 0 && Date() < deadline {
            Thread.sleep(forTimeInterval: 1)
            status = try SluiceBinary.run(["status", out])
        }
        #expect(status.status == 0, "\(status.stdoutText)\(status.stderr)")
        #expect(try outputFiles(out) == expected)
        let log = try String(contentsOfFile: out + "/_work/logs/coordinator.log", encoding: .utf8)
        #expect(log.contains("sluice run: done"), "\(log)")
    }

}

@Suite("Slurm executor: refusals before anything is submitted")
struct SlurmRefusalTests {
    @Test("no sbatch on the PATH; a controller that does not answer")
    func refusals() throws {
        let directory = try TemporaryDirectory()
        let config = try slurmConfig(directory, jobName: "t-refuse")
        let noSlurm = try Shell.run([
            "/usr/bin/env", "PATH=/nonexistent", SluiceBinary.path, "run", config, "--out", directory.path("a"),
        ])
        #expect(noSlurm.status == 1 && noSlurm.stderr.contains("sbatch is not on the PATH"), "\(noSlurm.stderr)")
        guard SlurmClient.sbatchPath() != nil else { return }  // the controller check needs Slurm's commands
        try directory.write(
            "bad-slurm.conf", "ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort=1\n")
        let unreachable = try Shell.run([
            "/usr/bin/env", "SLURM_CONF=\(directory.path("bad-slurm.conf"))", SluiceBinary.path, "run", config, "--out",
            directory.path("b"),
        ])
        #expect(
            unreachable.status == 1 && unreachable.stderr.contains("cannot reach the Slurm controller"),
            "\(unreachable.stderr)")
    }
}
