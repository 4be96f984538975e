// swift-tools-version: 6.2
import PackageDescription

/// Every Swift target opts into the same upcoming features, so that no module is held to a
/// looser standard than its neighbours.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sluice",
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
        .library(name: "SluiceBPE", targets: ["SluiceBPE"]),
        .library(name: "SluiceConfig", targets: ["SluiceConfig"]),
        .library(name: "SluiceIO", targets: ["SluiceIO"]),
        .library(name: "SluiceIngest", targets: ["SluiceIngest"]),
        .library(name: "SluicePipeline", targets: ["SluicePipeline"]),
        .library(name: "SluiceEmbedding", targets: ["SluiceEmbedding"]),
        .library(name: "SluiceVectors", targets: ["SluiceVectors"]),
        .library(name: "SluiceWords", targets: ["SluiceWords"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // MARK: - C libraries
        .systemLibrary(
            name: "CSluiceArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        // zlib, liblzma and libzstd themselves for .gz, .xz and .zst documents, so that a cut
        // stream keeps every byte decoded before the cut.
        .systemLibrary(
            name: "CSluiceZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CSluiceLZMA",
            pkgConfig: "liblzma",
            providers: [.apt(["liblzma-dev"])]
        ),
        .systemLibrary(
            name: "CSluiceZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CSluiceLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),

        .systemLibrary(
            name: "CSluiceProcess"
        ),
        // The source commit baked in by `scripts/dev install` (sluice --version).
        .systemLibrary(
            name: "CSluiceBuildInfo"
        ),

        // MARK: - Libraries, one per concern
        .target(
            name: "SluiceBPE",
            swiftSettings: strictSettings + [.strictMemorySafety()]
        ),
        .target(
            name: "SluiceEmbedding",
            swiftSettings: strictSettings
        ),
        // Pretrained word vectors: gensim-exact loaders, queries and writers.
        .target(
            name: "SluiceVectors",
            dependencies: ["SluiceIO"],
            swiftSettings: strictSettings
        ),
        // The book's word-level tokenizer (SimpleTokenizerV2).
        .target(
            name: "SluiceWords",
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceConfig",
            dependencies: ["SluiceIO"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceIO",
            dependencies: [
                "CSluiceLZ4",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceIngest",
            dependencies: ["CSluiceArchive", "CSluiceLZMA", "CSluiceZlib", "CSluiceZstd", "SluiceConfig", "SluiceIO"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluicePipeline",
            dependencies: [
                "CSluiceProcess", "SluiceBPE", "SluiceConfig", "SluiceEmbedding", "SluiceIO", "SluiceIngest",
                "SluiceVectors", "SluiceWords",
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "CSluiceBuildInfo", "SluiceBPE", "SluiceConfig", "SluiceEmbedding", "SluiceIO", "SluiceIngest",
                "SluicePipeline", "SluiceVectors", "SluiceWords",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: - Tests
        .target(
            name: "SluiceTestSupport",
            dependencies: ["SluiceIO"],
            path: "Tests/SluiceTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceBPETests",
            dependencies: ["SluiceBPE", "SluiceTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceEmbeddingTests",
            dependencies: ["SluiceEmbedding", "SluiceIO", "SluiceTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceVectorsTests",
            dependencies: ["SluiceVectors", "SluiceWords", "SluiceTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceConfigTests",
            dependencies: ["SluiceConfig", "SluiceTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceIOTests",
            dependencies: ["SluiceIO", "SluiceTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceIngestTests",
            dependencies: ["SluiceIngest", "SluiceConfig", "SluiceIO", "SluiceTestSupport"],
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluicePipelineTests",
            dependencies: [
                "SluiceBPE", "SluiceConfig", "SluiceIO", "SluiceIngest", "SluicePipeline", "SluiceTestSupport",
                "SluiceWords",
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceEndToEndTests",
            dependencies: ["SluiceTestSupport", "SluiceIO", "SluiceIngest", "SluicePipeline"],
            swiftSettings: strictSettings
        ),
    ]
)
