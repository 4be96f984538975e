// swift-tools-version: 6.2
// Benchmarks live in their own package so the main package's build (and CI) stays lean.
import PackageDescription

let package = Package(
    name: "sluice-benchmarks",
    dependencies: [.package(name: "sluice", path: "..")],
    targets: [
        .executableTarget(
            name: "TokenizerBenchmark",
            dependencies: [.product(name: "SluiceBPE", package: "sluice")],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]
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
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]
        ),
        .executableTarget(
            name: "SchedulerBenchmark",
            dependencies: [.product(name: "SluicePipeline", package: "sluice")],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]
        ),
        .executableTarget(
            name: "PlanBenchmark",
            dependencies: [
                .product(name: "SluiceConfig", package: "sluice"),
                .product(name: "SluiceIO", package: "sluice"),
                .product(name: "SluiceIngest", package: "sluice"),
                .product(name: "SluicePipeline", package: "sluice"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("MemberImportVisibility"),
            ]
        ),
    ]
)
