/// Seeded embedding tables exactly as consecutive `nn.Embedding(rows, columns)` calls after
/// `torch.manual_seed(seed)` make them: one generator, drawn in table order.
public enum TableInitializer {
    /// Row-major float32 tables, and the generator as it is after the last one (a
    /// `DataLoader(shuffle=True)` created next continues from there).
    public static func torch(
        seed: UInt64, shapes: [(rows: Int, columns: Int)], kernel: TorchKernel = .avx2
    ) -> (tables: [[Float]], generator: TorchGenerator) {
        var generator = TorchGenerator(seed: seed)
        let tables = shapes.map { generator.normalFloats(count: $0.rows * $0.columns, kernel: kernel) }
        return (tables, generator)
    }
}
