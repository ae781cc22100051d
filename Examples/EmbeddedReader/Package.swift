// swift-tools-version:5.9
import PackageDescription

// A package that uses TinyShard the way any other project does: as a versioned dependency (any 0.x
// release from 0.1.0 on), with no build settings of its own. run.sh builds and runs it against a clone
// of this repository tagged 0.1.0 (it writes that clone's URL over the one below), so a change that
// breaks embedding — an unsafe build flag, a library that is not a product — fails CI.
let package = Package(
    name: "EmbeddedReader",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://git.example.com/tinyshard.git", from: "0.1.0"),
    ],
    targets: [
        .executableTarget(
            name: "embedded-reader",
            dependencies: [
                .product(name: "ShardFormat", package: "tinyshard"),
                .product(name: "ShardConvert", package: "tinyshard"),
                .product(name: "DemoData", package: "tinyshard"),
                .product(name: "Tensor", package: "tinyshard"),
                .product(name: "TinyViT", package: "tinyshard"),
            ]),
    ]
)
