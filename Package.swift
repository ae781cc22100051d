// swift-tools-version:6.0
import PackageDescription

// No target carries unsafe flags (-target-cpu, -march, -O...): SwiftPM refuses them in a versioned
// dependency, and a CPU flag would make the package unbuildable on other CPUs. Hot loops that need
// wider SIMD than the architecture's baseline live in the C targets (CFormatKernels, CTensorKernels),
// built twice and chosen at run time by CKernelDispatch.

let package = Package(
    name: "TinyShard",
    platforms: [.macOS(.v13)],
    products: [
        // The libraries another package can depend on (Examples/EmbeddedReader builds against them).
        .library(name: "ShardFormat", targets: ["ShardFormat"]),
        .library(name: "ShardConvert", targets: ["ShardConvert"]),
        .library(name: "DemoData", targets: ["DemoData"]),
        .library(name: "Augment", targets: ["Augment"]),
        .library(name: "ImageStore", targets: ["ImageStore"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "TinyViT", targets: ["TinyViT"]),
        .library(name: "Distill", targets: ["Distill"]),
        .executable(name: "tinyshard", targets: ["tinyshard"]),
        .executable(name: "tinyshard-bench", targets: ["tinyshard-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target ShardFormat` (DocC); a plugin, never linked.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CKernelDispatch"),
        .target(name: "CFormatKernels", dependencies: ["CKernelDispatch"]),
        // Outside formats parsed once, strictly (JSON of the spec's grammar, .npy, safetensors); no ML code.
        .target(name: "Interchange"),
        // Below everything: the one SplitMix64 mixer, CRC-32, the file map and atomic output, and RGBImage with its resize.
        .target(name: "TinyShardBase", dependencies: ["CZlib"]),
        .target(name: "ShardFormat", dependencies: ["CZlib", "Interchange", "CFormatKernels", "TinyShardBase"]),
        .target(name: "ShardConvert", dependencies: ["ShardFormat", "Interchange"]),
        // The synthetic demo dataset (`tinyshard demo`, benchmarks, tests): a seeded teacher and augmentation draws.
        .target(name: "DemoData", dependencies: ["ShardFormat", "ShardConvert"]),
        .target(name: "Augment", dependencies: ["TinyShardBase", "ShardFormat", "Interchange"]),
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .target(name: "ImageStore", dependencies: ["TinyShardBase", "CPNG", "CTurboJPEG", "CZlib", "Interchange"]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "CTensorKernels", dependencies: ["CKernelDispatch"]),
        .target(name: "Tensor", dependencies: ["CDNNL", "Interchange", "CTensorKernels"]),
        .target(name: "TinyViT", dependencies: ["Tensor", "Interchange", "TinyShardBase"]),
        .target(name: "Distill", dependencies: ["ShardFormat", "Augment", "ImageStore", "Tensor", "TinyViT"]),
        // The main job (distill-demo), its tables and plots, record rendering and contact sheets, and the analyses
        // of a pass (analyze): what the CLI shows, on top of the libraries.
        .target(name: "Reports", dependencies: ["Distill", "ShardFormat", "ShardConvert", "Augment", "ImageStore", "Tensor", "TinyViT"]),
        // MPI (Debian's Open MPI) for the CLI's distributed teacher pass and training; only DistillMPI and
        // the tinyshard executable link it, never the libraries above.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "DistillMPI", dependencies: ["CMPI", "Distill"]),
        .executableTarget(
            name: "tinyshard",
            dependencies: ["ShardFormat", "ShardConvert", "DemoData", "Augment", "Tensor", "TinyViT", "Distill", "DistillMPI", "ImageStore", "Reports", "TinyShardBase",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // The fuzzing harness (Fuzz/README.md): no unsafe flags here; Fuzz/run.sh adds libFuzzer on the command line.
        .executableTarget(name: "tinyshard-fuzz", dependencies: ["Interchange", "ShardFormat", "ShardConvert", "ImageStore", "CZlib"]),
        .executableTarget(name: "tinyshard-bench", dependencies: ["ShardFormat", "ShardConvert", "DemoData", "Tensor", "TinyViT", "ImageStore", "Augment", "TinyShardBase"]),
        // Decode and train-step numbers of two builds side by side (Tools/bench_flag_free.sh).
        .executableTarget(name: "tinyshard-paired", dependencies: ["ShardFormat", "ShardConvert", "Tensor", "TinyViT"]),
        .testTarget(name: "InterchangeTests", dependencies: ["Interchange"]),
        .testTarget(name: "ShardFormatTests", dependencies: ["ShardFormat", "Interchange", "CKernelDispatch", "CZlib"]),
        .testTarget(name: "ShardConvertTests", dependencies: ["TestSupport", "ShardConvert", "ShardFormat", "Interchange", "DemoData"]),
        .testTarget(name: "DemoDataTests", dependencies: ["TestSupport", "DemoData", "ShardFormat"]),
        .testTarget(name: "TinyShardCLITests", dependencies: ["TestSupport", "tinyshard", "ShardFormat", "Tensor", "ImageStore", "Augment"]),
        .testTarget(name: "AugmentTests", dependencies: ["Augment", "ShardFormat", "Interchange"]),
        .testTarget(name: "ImageStoreTests", dependencies: ["TestSupport", "ImageStore", "TinyShardBase", "Augment", "CPNG", "CTurboJPEG", "CZlib"]),
        // TemporaryFolder, for every test target that writes files.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Fixtures shared by the Distill and Reports tests (a tiny teacher, a digits store).
        .target(name: "DistillTestSupport", dependencies: ["Distill", "ShardFormat", "Augment", "ImageStore", "Tensor", "TinyViT"],
                path: "Tests/DistillTestSupport"),
        .testTarget(name: "DistillTests", dependencies: ["Distill", "DistillTestSupport", "ShardFormat", "Augment", "ImageStore", "Tensor", "TinyViT"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Distill", "DistillTestSupport", "ShardFormat", "Augment", "ImageStore", "Tensor", "TinyViT"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CKernelDispatch"]),
        .testTarget(name: "TinyViTTests", dependencies: ["TinyViT", "Tensor"]),
    ],
    // Every target, tests included, builds in the Swift 6 language mode (complete data-race checking);
    // docs/swift6.md says what each threaded part does to pass it.
    swiftLanguageModes: [.v6]
)
