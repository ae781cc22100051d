import Foundation
@_exported import TestSupport      // TemporaryFolder
import XCTest

/// Runs the built `tinyshard` binary as a subprocess.
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String

        var stderrLines: [Substring] { stderr.split(separator: "\n") }
    }

    /// The binary next to the test bundle: on Linux `Bundle.main.bundleURL` is the build products folder;
    /// on macOS the .xctest bundle sits in it.
    static func binary() throws -> URL {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
            + Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for folder in candidates {
            let url = folder.appendingPathComponent("tinyshard")
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), !isFolder.boolValue,
               FileManager.default.isExecutableFile(atPath: url.path) {
                return url
            }
        }
        throw XCTSkip("the tinyshard binary is not next to the test bundle (looked in \(candidates.map(\.path))); build with --build-tests")
    }

    /// Starts the binary with output going to files in `folder`; with a `launcher` (e.g. mpirun and its
    /// options) the launcher runs the binary; `environment` entries are added to this process's.
    static func start(_ arguments: [String], in folder: TemporaryFolder, launcher: [String] = [],
                      environment: [String: String] = [:]) throws -> (Process, stdout: String, stderr: String) {
        let process = Process()
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [try binary().path] + arguments
        } else {
            process.executableURL = try binary()
            process.arguments = arguments
        }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let tag = UUID().uuidString
        let out = folder.file("stdout-\(tag)")
        let err = folder.file("stderr-\(tag)")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out, err)
    }

    /// Runs the binary to completion.
    static func run(_ arguments: [String], in folder: TemporaryFolder, launcher: [String] = [],
                    environment: [String: String] = [:]) throws -> Result {
        let (process, out, err) = try start(arguments, in: folder, launcher: launcher, environment: environment)
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }
}

/// Reads the block layout of a shard file without the library: where each complete block starts.
enum ShardBytes {
    static func u32(_ bytes: [UInt8], _ offset: Int) -> Int {
        Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
    }

    /// Offsets of the blocks that lie wholly inside `bytes` (header length at 12; blocks from 20 + H;
    /// each block is 32 bytes of header plus the payload length at its offset 16).
    static func completeBlocks(_ bytes: [UInt8]) -> [Int] {
        guard bytes.count >= 16 else { return [] }
        var offset = 20 + u32(bytes, 12)
        var blocks: [Int] = []
        while offset + 32 <= bytes.count, Array(bytes[offset..<(offset + 4)]) == Array("TSBK".utf8) {
            let end = offset + 32 + u32(bytes, offset + 16)
            guard end <= bytes.count else { break }
            blocks.append(offset)
            offset = end
        }
        return blocks
    }
}
