import ArgumentParser
import Foundation
import ShardConvert

/// The root command: a thin layer of subcommands over the libraries.
struct TinyShard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tinyshard",
        abstract: "Store, check and convert a teacher's top-K predictions (TinyShard format 1.2, Spec/FORMAT.md); train students from them.",
        discussion: """
            Exit codes: 0 success, 1 problems found (verify) or nothing recovered (recover), \
            2 usage error or unreadable input.
            Start with: tinyshard demo --out /tmp/demo && tinyshard verify /tmp/demo && tinyshard inspect /tmp/demo
            """,
        version: TinyShardVersion.writer,
        subcommands: [Demo.self, Convert.self, Export.self, Inspect.self, Verify.self, Dump.self, Recover.self, Model.self, Teacher.self, Train.self, Render.self, Analyze.self, DistillDemo.self, Images.self, Recipe.self])

    /// Parses the command line, runs the command and exits; never returns, never traps on user input.
    /// Under mpirun, every rank runs this; ``Ranks`` decides how a rank leaves.
    static func runMain() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Ranks.exit(0, after: nil)
        } catch {
            Ranks.exit(CLIFailure.report(error), after: error)
        }
    }
}
