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
        .executableTarget(
            name: "tinyshard",
            dependencies: ["ShardFormat", "ShardConvert",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "tinyshard-bench", dependencies: ["ShardFormat", "ShardConvert"],
                          swiftSettings: fastMath),
        .testTarget(name: "ShardFormatTests", dependencies: ["ShardFormat"]),
        .testTarget(name: "ShardConvertTests", dependencies: ["ShardConvert", "ShardFormat"]),
        .testTarget(name: "TinyShardCLITests", dependencies: ["tinyshard", "ShardFormat"]),
    ],
    swiftLanguageModes: [.v5]
)
