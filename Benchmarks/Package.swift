// swift-tools-version: 6.2
// Benchmarks live in their own package so the main package's build (and CI) stays lean.
import PackageDescription

/// The main package's upcoming features, for every benchmark target alike.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sluice-benchmarks",
    dependencies: [.package(name: "sluice", path: "..")],
    targets: [
        .executableTarget(
            name: "TokenizerBenchmark",
            dependencies: [.product(name: "SluiceBPE", package: "sluice")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "MaterializeBenchmark",
            dependencies: [
                .product(name: "SluiceBPE", package: "sluice"),
                .product(name: "SluiceConfig", package: "sluice"),
                .product(name: "SluiceEmbedding", package: "sluice"),
                .product(name: "SluiceIO", package: "sluice"),
                .product(name: "SluicePipeline", package: "sluice"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "SchedulerBenchmark",
            dependencies: [.product(name: "SluicePipeline", package: "sluice")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "PlanBenchmark",
            dependencies: [
                .product(name: "SluiceConfig", package: "sluice"),
                .product(name: "SluiceIO", package: "sluice"),
                .product(name: "SluiceIngest", package: "sluice"),
                .product(name: "SluicePipeline", package: "sluice"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
