import Foundation
import SluiceEmbedding
import SluiceIO
import SluiceTestSupport
import Testing

func golden(_ name: String) throws -> [String: Any] {
    try #require(try Fixtures.json(Fixtures.shared("golden/torch/\(name)")) as? [String: Any])
}

func bits(_ values: [Float]) -> [String] {
    values.map { String(format: "%08x", $0.bitPattern) }
}

func sha256(_ values: [Float]) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(values.count * 4)
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    return SHA256Hasher.hex(bytes)
}

func kernelName(_ kernel: TorchKernel) -> String { kernel == .avx2 ? "avx2" : "default" }

@Suite(
    "PyTorch generator and init, bit for bit",
    .enabled(if: Fixtures.hasShared, "needs ../shared (the PyTorch goldens), which is not beside the repository"))
struct TorchGoldenTests {
    @Test("MT19937 outputs, 64-bit values and uniforms match torch for every seed in the golden")
    func mersenneTwister() throws {
        let file = try golden("mt19937.json")
        let vectors = try #require(file["vectors"] as? [[String: Any]])
        #expect(vectors.count == 8)
        for vector in vectors {
            let seedText = try #require(vector["seed"] as? String)
            let seed = UInt64(seedText) ?? UInt64(bitPattern: Int64(seedText) ?? 0)
            var generator = TorchGenerator(seed: seed)
            let first8 = (0..<8).map { _ in Int(generator.next32()) }
            #expect(first8 == vector["first8_u32"] as? [Int], "seed \(seedText)")
            var for64 = TorchGenerator(seed: seed)
            #expect(
                [for64.next64(), for64.next64()].map(String.init) == vector["first2_u64_decimal"] as? [String],
                "seed \(seedText)")
            var forFloat = TorchGenerator(seed: seed)
            #expect(
                bits((0..<8).map { _ in forFloat.uniformFloat() }) == vector["first8_uniform_float_bits"] as? [String])
            var forDouble = TorchGenerator(seed: seed)
            let doubles = (0..<2).map { _ in String(format: "%016llx", forDouble.uniformDouble().bitPattern) }
            #expect(doubles == vector["first2_uniform_double_hex"] as? [String], "seed \(seedText)")
        }
        let check = try #require(file["standard_check"] as? [String: Any])
        var standard = TorchGenerator(seed: UInt64(try #require(check["seed"] as? Int)))
        for _ in 0..<9999 { _ = standard.next32() }
        #expect(Int(standard.next32()) == check["u32_index_9999"] as? Int)
    }

    @Test(
        "manual_seed(123); Embedding(6, 3); Embedding(4, 3) — all values, both kernels", arguments: TorchKernel.allCases
    )
    func smallTables(_ kernel: TorchKernel) throws {
        let file = try golden("embedding_seed123_tok6x3_pos4x3.json")
        var generator = TorchGenerator(seed: 123)
        let tok = generator.normalFloats(count: 18, kernel: kernel)
        let pos = generator.normalFloats(count: 12, kernel: kernel)
        let expectedTok = try #require((file["tok"] as? [String: Any])?[kernelName(kernel)] as? [String: Any])
        let expectedPos = try #require((file["pos"] as? [String: Any])?[kernelName(kernel)] as? [String: Any])
        #expect(bits(tok) == expectedTok["bits"] as? [String])
        #expect(bits(pos) == expectedPos["bits"] as? [String])
        #expect(sha256(tok) == expectedTok["sha256"] as? String)
    }

    @Test(
        "small cases: the tail block, the double path, and the normal cache carried across tables",
        arguments: TorchKernel.allCases)
    func smallCases(_ kernel: TorchKernel) throws {
        let cases = try #require(try golden("embedding_small_cases.json")["cases"] as? [String: [String: Any]])
        let recipes: [String: (UInt64, [(Int, Int)])] = [
            "seed0_6x3": (0, [(6, 3)]),
            "seed4294967303_17x1": (4_294_967_303, [(17, 1)]),
            "seed123_2x3": (123, [(2, 3)]),
            "seed123_3x3_then_4x3": (123, [(3, 3), (4, 3)]),
        ]
        #expect(Set(cases.keys) == Set(recipes.keys))
        for (name, (seed, shapes)) in recipes {
            let tables = try #require(cases[name]?["tables"] as? [[String: Any]])
            var generator = TorchGenerator(seed: seed)
            for (index, shape) in shapes.enumerated() {
                let values = generator.normalFloats(count: shape.0 * shape.1, kernel: kernel)
                let expected = try #require(tables[index][kernelName(kernel)] as? [String: Any])
                #expect(expected["shape"] as? [Int] == [shape.0, shape.1])
                #expect(sha256(values) == expected["sha256"] as? String, "\(name) table \(index)")
                if let expectedBits = expected["bits"] as? [String] {
                    #expect(bits(values) == expectedBits, "\(name) table \(index)")
                }
            }
        }
    }

    @Test(
        "manual_seed(123); Embedding(50257, 256); Embedding(4, 256) — SHA-256 of the whole table",
        arguments: TorchKernel.allCases)
    func gpt2SizedTables(_ kernel: TorchKernel) throws {
        let file = try golden("embedding_seed123_tok50257x256_pos4x256.json")
        var generator = TorchGenerator(seed: 123)
        let tok = generator.normalFloats(count: 50257 * 256, kernel: kernel)
        let pos = generator.normalFloats(count: 4 * 256, kernel: kernel)
        let expectedTok = try #require((file["tok"] as? [String: Any])?[kernelName(kernel)] as? [String: Any])
        let expectedPos = try #require((file["pos"] as? [String: Any])?[kernelName(kernel)] as? [String: Any])
        #expect(bits(Array(tok.prefix(5))) == expectedTok["first_bits"] as? [String])
        #expect(bits(Array(tok.suffix(5))) == expectedTok["last_bits"] as? [String])
        #expect(sha256(tok) == expectedTok["sha256"] as? String)
        #expect(bits(pos) == expectedPos["bits"] as? [String])
        #expect(sha256(pos) == expectedPos["sha256"] as? String)
    }

    @Test("DataLoader(shuffle=True) orders for two epochs after manual_seed(123)")
    func dataLoaderShuffle() throws {
        let file = try golden("verdict_dataloader.json")
        let shuffle = try #require(file["shuffle_after_manual_seed_123"] as? [String: Any])
        let epochs = try #require(shuffle["epochs"] as? [[String: Any]])
        let windows = try #require(file["num_windows"] as? Int)
        var generator = TorchGenerator(seed: 123)
        for epoch in epochs {
            var probe = generator
            #expect(String(probe.next64() & 0x7FFF_FFFF_FFFF_FFFF) == epoch["base_seed_draw"] as? String)
            #expect(String(probe.next64() & 0x7FFF_FFFF_FFFF_FFFF) == epoch["sampler_seed"] as? String)
            #expect(generator.dataLoaderEpochOrder(sampleCount: windows) == epoch["permutation"] as? [Int])
        }
    }
}
