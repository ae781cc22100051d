// swift-tools-version:6.0
import PackageDescription

// Numeric hot loops (float16 conversion, dense label fill) need AVX2/F16C instructions to be inlined
// instead of becoming library calls; every machine this project runs on (developers, CI) is Haswell+.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]

let package = Package(
    name: "TinyShard",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "ShardFormat", targets: ["ShardFormat"]),
        .library(name: "ShardConvert", targets: ["ShardConvert"]),
        .library(name: "TinyViT", targets: ["TinyViT"]),
        .executable(name: "tinyshard", targets: ["tinyshard"]),
        .executable(name: "tinyshard-bench", targets: ["tinyshard-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "ShardFormat", dependencies: ["CZlib"], swiftSettings: fastMath),
        .target(name: "ShardConvert", dependencies: ["ShardFormat"], swiftSettings: fastMath),
        .target(name: "Augment", dependencies: ["ShardFormat"], swiftSettings: fastMath),
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", providers: [.apt(["libturbojpeg0-dev"])]),
        .target(name: "ImageStore", dependencies: ["Augment", "CPNG", "CTurboJPEG", "CZlib"], swiftSettings: fastMath),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "Tensor", dependencies: ["CDNNL"], swiftSettings: fastMath),
        .target(name: "TinyViT", dependencies: ["Tensor"], swiftSettings: fastMath),
        .target(name: "Distill", dependencies: ["ShardFormat", "Augment", "ImageStore", "Tensor", "TinyViT"],
                swiftSettings: fastMath),
        .executableTarget(
            name: "tinyshard",
            dependencies: ["ShardFormat", "ShardConvert", "Tensor", "TinyViT", "Distill", "ImageStore",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "tinyshard-bench", dependencies: ["ShardFormat", "ShardConvert", "TinyViT"],
                          swiftSettings: fastMath),
        .testTarget(name: "ShardFormatTests", dependencies: ["ShardFormat"]),
        .testTarget(name: "ShardConvertTests", dependencies: ["ShardConvert", "ShardFormat"]),
        .testTarget(name: "TinyShardCLITests", dependencies: ["tinyshard", "ShardFormat", "Tensor", "ImageStore", "Augment"]),
        .testTarget(name: "AugmentTests", dependencies: ["Augment", "ShardFormat"], swiftSettings: fastMath),
        .testTarget(name: "ImageStoreTests", dependencies: ["ImageStore", "Augment"], swiftSettings: fastMath),
        .testTarget(name: "DistillTests", dependencies: ["Distill", "ShardFormat", "Augment", "ImageStore", "TinyViT"],
                    swiftSettings: fastMath),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], swiftSettings: fastMath),
        .testTarget(name: "TinyViTTests", dependencies: ["TinyViT", "Tensor"], swiftSettings: fastMath),
    ],
    swiftLanguageModes: [.v5]
)
