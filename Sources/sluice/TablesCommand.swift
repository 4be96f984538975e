import ArgumentParser
import SluiceConfig
import SluiceEmbedding
import SluiceIO

struct Tables: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write seeded embedding tables, bit-exact with torch.manual_seed(S) + nn.Embedding, to a safetensors file.",
        discussion: """
            Tables are drawn in order from one generator, exactly as consecutive nn.Embedding calls \
            after torch.manual_seed(S): the second --shape continues where the first stopped. Names \
            are token_embedding, position_embedding, then table_2, table_3, … unless --name is given.

            Example (the book's chapter 2):
              sluice tables --init torch --seed 123 --shape 50257x256 --shape 4x256 --out tables.safetensors
            """)

    @Option(name: .customLong("init"), help: "Initializer (only torch).")
    var initializer: String = "torch"

    @Option(
        name: .long, parsing: .unconditional,
        help: """
            torch.manual_seed value, -9223372036854775808…18446744073709551615; \
            negative seeds are torch's two's complement (-5 is 2^64-5).
            """)
    var seed: Seed

    @Option(name: .long, help: "Table shape ROWSxCOLUMNS (repeatable, in draw order).")
    var shape: [String]

    @Option(name: .long, help: "Tensor name for each --shape, in order.")
    var name: [String] = []

    @Option(name: .long, help: "PyTorch CPU kernel: avx2 (default; every modern x86-64) or default (scalar libm).")
    var kernel: String = "avx2"

    @Option(name: .long, help: "Output .safetensors file (written atomically).")
    var out: String

    func validate() throws {
        guard initializer == "torch" else {
            throw ValidationError("--init: only \"torch\" is supported, got \"\(initializer)\"")
        }
        guard TorchKernel(rawValue: kernel) != nil else {
            throw ValidationError("--kernel: expected avx2 or default, got \"\(kernel)\"")
        }
        guard !shape.isEmpty else { throw ValidationError("give at least one --shape ROWSxCOLUMNS") }
        guard name.isEmpty || name.count == shape.count else {
            throw ValidationError(
                "--name given \(name.count) time(s) for \(shape.count) --shape(s); give one per shape or none")
        }
        for item in shape { _ = try Self.parse(item) }
    }

    static func parse(_ text: String) throws -> (rows: Int, columns: Int) {
        let parts = text.lowercased().split(separator: "x")
        guard parts.count == 2, let rows = Int(parts[0]), let columns = Int(parts[1]), rows > 0, columns > 0,
            rows.multipliedReportingOverflow(by: columns).overflow == false
        else { throw ValidationError("--shape \(text): expected ROWSxCOLUMNS with positive integers, e.g. 50257x256") }
        return (rows, columns)
    }

    func run() throws {
        let shapes = try shape.map(Self.parse)
        let defaults = ["token_embedding", "position_embedding"]
        let names = name.isEmpty ? shapes.indices.map { $0 < defaults.count ? defaults[$0] : "table_\($0)" } : name
        let (tables, _) = TableInitializer.torch(
            seed: seed.bits, shapes: shapes, kernel: TorchKernel(rawValue: kernel) ?? .avx2)
        let tensors = zip(zip(names, shapes), tables).map { ($0.0, [$0.1.rows, $0.1.columns], $1) }
        let metadata = [("sluice.init", "torch"), ("sluice.seed", seed.description), ("sluice.torch_kernel", kernel)]
        do {
            _ = try SafeTensors.writeFloat32(tensors, metadata: metadata, to: out)
        } catch {
            fail(error)
        }
        print(
            "\(out): \(zip(names, shapes).map { "\($0) [\($1.rows), \($1.columns)]" }.joined(separator: ", ")), seed \(seed), kernel \(kernel)"
        )
    }
}
