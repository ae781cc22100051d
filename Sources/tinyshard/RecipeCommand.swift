import ArgumentParser
import Augment
import Distill

/// `tinyshard recipe`: a recipe's canonical JSON (a starting point for a recipe file) and its hash.
struct Recipe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an augmentation recipe's canonical JSON (the hash in shard provenance is its SHA-256).",
        discussion: "Presets: tinyvit, tinyvit-mix, digits. A recipe file holds the same keys; missing ones keep tinyvit's values, null turns rand_augment, erasing or mix off.")

    @Argument(help: "A preset name or a recipe JSON file.") var recipe = "tinyvit"
    @Flag(help: "Print only the SHA-256 of the canonical JSON.") var hash = false

    func run() throws {
        let named = try DistillCLI.run { try NamedRecipe.load(recipe) }
        print(hash ? named.hash : named.recipe.canonicalJSON)
    }
}
