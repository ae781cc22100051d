import ArgumentParser
import Foundation
import TinyShardBase
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Distill
import ShardConvert
import ShardFormat

/// Exit codes of every subcommand.
enum ExitStatus {
    static let success: Int32 = 0
    /// verify found problems; recover found nothing to keep.
    static let problems: Int32 = 1
    /// Bad usage, or an input that cannot be read at all.
    static let usage: Int32 = 2
}

/// An error the CLI itself raises: a one-line message (already in `FILE: [code] message` form) and an
/// exit code. `message` nil means the command already printed what it had to say.
struct CLIFailure: Error {
    var message: String?
    var exitCode: Int32

    init(_ message: String?, exitCode: Int32 = ExitStatus.usage) {
        self.message = message
        self.exitCode = exitCode
    }

    /// `FILE: [code] message`, the shape of every file error.
    init(file: String, code: String, _ message: String, exitCode: Int32 = ExitStatus.usage) {
        self.init("\(file): [\(code)] \(message)", exitCode: exitCode)
    }

    /// Exits with `code` after printing nothing more.
    static func exit(_ code: Int32) -> CLIFailure { CLIFailure(nil, exitCode: code) }

    /// Prefix of every error line: empty for one process, `rank R of N: ` under mpirun.
    nonisolated(unsafe) static var context = ""

    /// Prints `error` as one line on stderr and returns the exit code for it.
    static func report(_ error: Error) -> Int32 {
        switch error {
        case let agreed as AgreedFailure:
            return report(agreed.underlying)
        case let error as DistillError:
            printError(error.description)
            return ExitStatus.usage
        case let failure as CLIFailure:
            if let message = failure.message { printError(message) }
            return failure.exitCode
        case let error as ShardError:
            printError(error.description)
            return ExitStatus.usage
        case let error as ConversionError:
            printError(error.description)
            return ExitStatus.usage
        case let code as ExitCode:
            return code.rawValue
        default:
            let code = TinyShard.exitCode(for: error)
            if code == .success {  // --help, --version
                print(TinyShard.fullMessage(for: error))
                return ExitStatus.success
            }
            var message = TinyShard.message(for: error)
            if message.isEmpty { message = String(describing: error) }
            printError("[usage] " + message + " (see 'tinyshard --help')")
            return ExitStatus.usage
        }
    }

    /// `tinyshard: error: ` and the message on one line of stderr.
    static func printError(_ message: String) {
        let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        StandardError.write("tinyshard: error: \(context)\(line)\n")
    }
}
