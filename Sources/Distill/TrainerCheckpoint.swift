import Foundation
import Tensor
import TinyViT

/// `checkpoint/state.json`: the position and everything a resume must agree on.
struct CheckpointState: Codable {
    var format = "tinyshard-distill-checkpoint"
    var completedEpochs: Int
    /// Batches already trained in epoch `completedEpochs` (non-zero only for a checkpoint written on a stop).
    var stepInEpoch: Int
    var step: Int
    var options: TrainOptions
    var configuration: TinyViTConfiguration
    var source: String
    /// Drop path draws from SplitMix64(seed: dropPathSeed(step)), and a batch is a function of its
    /// position: the position is the whole random state.
    var rngSeed: UInt64
    var trainSeconds: Double
    var rows: [MetricsRow]
    /// Processes of the run that wrote it (absent: 1); a resume must use as many.
    var ranks: Int?
}

extension Trainer {
    var checkpointDirectory: String { runDirectory + "/checkpoint" }

    /// Writes the checkpoint into a temporary folder and swaps it in: the previous one stays until the
    /// new one is complete (and if the process dies between the two renames, ``loadCheckpoint()`` takes
    /// `checkpoint.previous`). With several ranks only rank 0 calls this.
    func saveCheckpoint() throws {
        let temporary = runDirectory + "/checkpoint.partial"
        let fm = FileManager.default
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        try model.save(to: URL(fileURLWithPath: temporary + "/model.safetensors"))
        try optimizer.stateDict().write(to: URL(fileURLWithPath: temporary + "/optimizer.safetensors"))
        let state = CheckpointState(completedEpochs: completedEpochs, stepInEpoch: stepInEpoch, step: step, options: options,
                                    configuration: model.configuration, source: sourceIdentity, rngSeed: dropPathSeed(step),
                                    trainSeconds: trainSeconds, rows: rows, ranks: communicator.size > 1 ? communicator.size : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: temporary + "/state.json"))
        let previous = runDirectory + "/checkpoint.previous"
        try? fm.removeItem(atPath: previous)
        if fm.fileExists(atPath: checkpointDirectory) { try fm.moveItem(atPath: checkpointDirectory, toPath: previous) }
        try fm.moveItem(atPath: temporary, toPath: checkpointDirectory)
        try? fm.removeItem(atPath: previous)
    }

    func loadCheckpoint() throws {
        var directory = checkpointDirectory
        let previous = runDirectory + "/checkpoint.previous"
        if !FileManager.default.fileExists(atPath: directory + "/state.json"),
           FileManager.default.fileExists(atPath: previous + "/state.json") {
            directory = previous  // stopped between the two renames of saveCheckpoint: that one is complete
        }
        let path = directory + "/state.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DistillError(.io, "no checkpoint to resume from", file: path)
        }
        let state: CheckpointState
        do { state = try JSONDecoder().decode(CheckpointState.self, from: data) } catch {
            throw DistillError(.badCheckpoint, "not a checkpoint state of this version", file: path)
        }
        guard state.configuration == model.configuration else {
            throw DistillError(.mismatch, "the checkpoint is of another architecture", file: path)
        }
        guard state.options == options else {
            throw DistillError(.mismatch, "the checkpoint was trained with other options; resume with the same ones", file: path)
        }
        guard (state.ranks ?? 1) == communicator.size else {
            let ranks = state.ranks ?? 1
            throw DistillError(.mismatch, "the checkpoint was written by a run of \(ranks) process\(ranks == 1 ? "" : "es"), this one has \(communicator.size); resume with the same number (\(ranks == 1 ? "without mpirun" : "mpirun -np \(ranks)"))", file: path)
        }
        guard state.source == sourceIdentity else {
            throw DistillError(.mismatch, "the checkpoint was trained from \(state.source), not \(sourceIdentity)", file: path)
        }
        guard state.completedEpochs >= 0, state.completedEpochs <= options.epochs, state.stepInEpoch >= 0,
              state.stepInEpoch < stepsPerEpoch, state.step == state.completedEpochs * stepsPerEpoch + state.stepInEpoch,
              state.rows.count == state.step else {
            throw DistillError(.badCheckpoint, "inconsistent position (epoch \(state.completedEpochs), batch \(state.stepInEpoch), step \(state.step))", file: path)
        }
        let weights = directory + "/model.safetensors"
        try model.load(contentsOf: URL(fileURLWithPath: weights))
        let optimizerPath = directory + "/optimizer.safetensors"
        try optimizer.load(SafeTensors(contentsOf: URL(fileURLWithPath: optimizerPath)), parameters: model.parameters, source: optimizerPath)
        completedEpochs = state.completedEpochs
        stepInEpoch = state.stepInEpoch
        step = state.step
        trainSeconds = state.trainSeconds
        rows = state.rows
    }
}
