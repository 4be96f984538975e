import SluiceConfig
import SluiceEmbedding
import SluicePipeline
import Testing

@Suite("WindowPlan")
struct WindowPlanTests {
    @Test("windowCount equals the windows the plan makes, across and within documents")
    func countMatchesPlan() throws {
        var state: UInt64 = 17
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<300 {
            var documents: [(start: Int, length: Int)] = []
            var position = 0
            for _ in 0..<(1 + next(5)) {
                let length = next(40)
                documents.append((position, length))
                position += length + 1
            }
            let stream = TokenStream(length: max(0, position - 1), documents: documents)
            for crossDocument in [true, false] {
                let settings = WindowSettings(
                    maxLength: 1 + next(8), stride: 1 + next(6), batchSize: 1 + next(4), shuffle: .none, seed: 1,
                    dropLast: next(2) == 0, crossDocument: crossDocument)
                let plan = try WindowPlan(stream: stream, settings: settings, shuffleGenerator: TorchGenerator(seed: 1))
                #expect(WindowPlan.windowCount(stream: stream, settings: settings) == plan.windowCount)
                #expect(
                    plan.batchCount
                        == (settings.dropLast
                            ? plan.windowCount / settings.batchSize
                            : (plan.windowCount + settings.batchSize - 1) / settings.batchSize))
            }
        }
    }

    @Test("a seeded permutation past PyTorch's randperm limit still works; the torch order is refused there")
    func largePermutations() throws {
        var generator = TorchGenerator(seed: 5)
        let permutation = generator.randomPermutation(1000)
        #expect(Set(permutation).count == 1000)
        // Within-document windows are counted from the document lengths alone, so no ids are needed.
        let stream = TokenStream(length: 0, documents: [(0, TorchGenerator.torchExactPermutationLimit + 2)])
        let settings = WindowSettings(
            maxLength: 1, stride: 1, batchSize: 1, shuffle: .torch, seed: 1, dropLast: true, crossDocument: false)
        #expect {
            try WindowPlan(stream: stream, settings: settings, shuffleGenerator: TorchGenerator(seed: 1))
        } throws: { error in
            "\(error)".contains("\"shuffle\": true")
        }
    }
}
