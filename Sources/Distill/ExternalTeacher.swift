import Foundation
import Tensor

/// A teacher in another process (e.g. PyTorch), fed through .npy files.
///
/// Protocol: `/bin/sh -c COMMAND` is started once. For each batch the pass writes the augmented images
/// to `IN.npy` (float32, (N, 3, H, W), ImageNet-normalised) and the line `IN.npy OUT.npy` to the
/// process's stdin; the process writes the logits to `OUT.npy` (float32 or float64, (N, classes)) and
/// answers with a line `ok` on stdout. When the pass ends, stdin is closed and the process should exit.
/// A minimal Python side:
/// ```python
/// import sys, numpy as np
/// for line in sys.stdin:
///     src, dst = line.split()
///     np.save(dst, model(np.load(src)).astype(np.float32)); print("ok", flush=True)
/// ```
public final class ExternalTeacher: TeacherModel {
    /// The shell command, run as `/bin/sh -c command`.
    public let command: String
    /// The classes of the logits the command must return.
    public let numClasses: Int
    /// The side in pixels of the square images it is given.
    public let imageSize: Int
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let directory: String
    private var batch = 0
    private var pendingOutput = Data()

    /// Starts the command (once) with a temporary folder for the batches; throws when it cannot be started.
    public init(command: String, numClasses: Int, imageSize: Int) throws {
        self.command = command
        self.numClasses = numClasses
        self.imageSize = imageSize
        directory = NSTemporaryDirectory() + "tinyshard-teacher-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A teacher that dies makes our next write to its stdin hit a closed pipe: without this the kernel
        // kills the whole process with SIGPIPE (no message, no checkpoint); ignored, the write fails with
        // EPIPE and `logits` reports the exit as a one-line error. Process-wide, and harmless to keep: this
        // process never relies on SIGPIPE to stop writing.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardInput = input
        process.standardOutput = output
        do { try process.run() } catch {
            throw DistillError(.teacher, "cannot start the external teacher `\(command)`: \(error.localizedDescription)")
        }
    }

    deinit { close() }

    /// Closes the teacher's stdin and waits for it to exit.
    public func close() {
        guard batch >= 0 else { return }
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
        batch = -1
    }

    /// Sends one batch (N, 3, H, W) and waits for its logits (N, classes); throws a `teacher` error when the process
    /// has exited, answers otherwise than `ok`, or writes an array of the wrong shape.
    public func logits(_ images: Tensor) throws -> Tensor {
        guard batch >= 0 else { throw DistillError(.teacher, "the external teacher is closed") }
        let inPath = directory + "/batch\(batch).npy", outPath = directory + "/logits\(batch).npy"
        batch += 1
        try NPY.write(images, to: URL(fileURLWithPath: inPath))
        guard process.isRunning else { throw DistillError(.teacher, "the external teacher `\(command)` exited (status \(process.terminationStatus))") }
        do {
            try input.fileHandleForWriting.write(contentsOf: Data("\(inPath) \(outPath)\n".utf8))
        } catch {
            throw DistillError(.teacher, "cannot write to the external teacher `\(command)`: \(error.localizedDescription)")
        }
        let line = try readLine()
        guard line.trimmingCharacters(in: .whitespaces) == "ok" else {
            throw DistillError(.teacher, "the external teacher `\(command)` answered \"\(line)\" instead of ok")
        }
        let logits = try NPY.read(URL(fileURLWithPath: outPath))
        try? FileManager.default.removeItem(atPath: inPath)
        try? FileManager.default.removeItem(atPath: outPath)
        return logits
    }

    private func readLine() throws -> String {
        while true {
            if let newline = pendingOutput.firstIndex(of: 0x0A) {
                let line = String(decoding: pendingOutput[pendingOutput.startIndex..<newline], as: UTF8.self)
                pendingOutput = Data(pendingOutput[(newline + 1)...])
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                throw DistillError(.teacher, "the external teacher `\(command)` closed its output without answering")
            }
            pendingOutput.append(chunk)
        }
    }
}
