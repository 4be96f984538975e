import ArgumentParser
import SluiceConfig
import SluiceIO
import SluicePipeline

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a pipeline config, or print the JSON Schema of the config format.",
        subcommands: [Check.self, Schema.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a config and print it with every default filled in.",
            discussion: "Every problem is listed as FILE:LINE:COLUMN: json.path: what is wrong — did you mean …?")

        @Argument(help: "The pipeline config (JSON).")
        var config: String

        func run() throws {
            do {
                let configuration = try Configuration.load(file: config)
                try ReferencedFiles.check(configuration)
                print(configuration.resolved.serialized())
                print("\(config): OK (resolved config SHA-256 \(configuration.resolvedSHA256))")
            } catch {
                fail(error)
            }
        }
    }

    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the JSON Schema (draft 2020-12) of config format 1, for editors and validators.")

        func run() throws {
            print(ConfigSchema.document().serialized())
        }
    }
}
