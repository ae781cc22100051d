import Augment
import Foundation
import ImageStore
import ShardFormat

/// Where a run's augmented views come from. Both give the same views for the same (seed, recipe): the
/// teacher pass writes records in ``TeacherPass/epochOrder(trainIndices:seed:epoch:)`` with parameters
/// from ``RecipeViews``, and a run drawing from the recipe walks the same order with the same draws.
public enum ViewSource {
    /// Replay each record's stored parameters, records in shard order; run epoch e reads the dataset's
    /// epoch `epochs[e % epochs.count]`. Needs no recipe.
    case replay(ShardDataset)
    /// Draw parameters on the fly from (seed, epoch, sample), samples in the teacher pass's order.
    case recipe(NamedRecipe, seed: UInt64)

    /// Identifies the views in a checkpoint (a resume must see the same ones).
    var identity: String {
        switch self {
        case let .replay(dataset): return "replay:" + dataset.directory
        case let .recipe(recipe, seed): return "recipe:\(recipe.hash):\(seed)"
        }
    }
}

/// Draws a recipe's parameters for store images: the sampler, plus what it needs to know about the
/// store (source sizes) and the training split (mix partners are drawn from training samples only, so a
/// held-out or validation image is never pasted into a training view).
public struct RecipeViews: Sendable {
    /// The sampler that draws each view's parameters.
    public let sampler: AugmentationSampler
    let store: ImageStore
    let map: SampleMap
    let partners: [UInt32]

    /// Views of `size` × `size` pixels drawn by `recipe` with `seed`, mix partners drawn from `trainIndices` only;
    /// throws when the size is outside 1...65535.
    public init(recipe: AugmentationRecipe, seed: UInt64, size: Int, store: ImageStore, map: SampleMap, trainIndices: [Int]) throws {
        sampler = try AugmentationSampler(runSeed: seed, recipe: recipe, outputWidth: size, outputHeight: size)
        self.store = store
        self.map = map
        partners = trainIndices.map { map.sampleID[$0] }.sorted()
    }

    /// The parameters of store image `index` in `epoch`.
    public func parameters(epoch: Int, index: Int) throws -> AugmentationParameters {
        let (w, h) = try store.size(at: index)
        return try sampler.parameters(epoch: UInt32(epoch), sample: map.sampleID[index], sourceWidth: w, sourceHeight: h,
                                      partners: partners) { partner in
            try store.size(at: map.storeIndex[Int(partner)])
        }
    }
}

/// One sample of an epoch: the store image and, when replaying, the record holding its parameters.
struct PlanItem: Sendable {
    var storeIndex: Int
    var shard: Int
    var ordinal: Int
}

/// Turns a ``ViewSource`` into epoch plans and per-item parameters. Used only on the batch-preparation
/// queue (its shard cursors are single-threaded).
final class ViewPlanner: @unchecked Sendable {
    let source: ViewSource
    let store: ImageStore
    let map: SampleMap
    let size: Int
    private let training: [Bool]
    private let recipeViews: RecipeViews?
    private var cursorEpoch = -1
    private(set) var cursors: [ShardCursor] = []
    /// Decoded blocks each cursor keeps: two for stored order, a window's worth (and the two at its edges)
    /// for a shuffle window.
    var cachedBlocks = 2

    /// Store indices of training images left out as samples (still allowed as mix partners: a stored view
    /// that pasted one in stays as the teacher saw it).
    let excluded: Set<Int>

    init(source: ViewSource, store: ImageStore, map: SampleMap, split: DataSplit, size: Int, excluded: Set<Int> = []) throws {
        self.excluded = excluded
        self.source = source
        self.store = store
        self.map = map
        self.size = size
        var training = [Bool](repeating: false, count: store.count)
        for i in split.train { training[i] = true }
        self.training = training
        trainIndices = split.train
        if case let .recipe(recipe, seed) = source {
            recipeViews = try RecipeViews(recipe: recipe.recipe, seed: seed, size: size, store: store, map: map, trainIndices: split.train)
        } else {
            recipeViews = nil
        }
    }

    private let trainIndices: [Int]

    /// The stored epoch's shards that training epoch `epoch` reads, in rank order (stored epoch `epoch`, or with
    /// cycling `epoch` mod the stored count, as ``checkEpochs(_:cycle:)`` allowed).
    func readers(epoch: Int) -> [ShardReader] {
        guard case let .replay(dataset) = source else { return [] }
        let epochs = dataset.epochs
        return dataset.shards(epoch: epochs[epoch % epochs.count]).sorted { $0.schema.rank < $1.schema.rank }
    }

    /// A replaying run of `epochs` epochs needs that many stored epochs, or `cycle` to read them again: the
    /// error names the stored count (and the pass's own count while a teacher pass is still writing).
    func checkEpochs(_ epochs: Int, cycle: Bool) throws {
        guard case let .replay(dataset) = source, epochs > dataset.epochs.count, !cycle else { return }
        let stored = dataset.epochs.count
        var pass = ""
        if let record = try? PassRecord.read(directory: dataset.directory), record.epochs > stored {
            pass = "; its teacher pass is asked for \(record.epochs) and has committed \(stored) so far"
        }
        throw DistillError(.mismatch, "the dataset holds \(stored) epoch\(stored == 1 ? "" : "s")\(pass); "
                           + "training for \(epochs) needs --cycle-epochs to read the stored epochs again in order", file: dataset.directory)
    }

    /// Training epoch `epoch`'s streams: the plan cut by `order` into the step's micro-batch streams.
    func streams(epoch: Int, order: SampleOrder, slicing: MicroBatches, seed: UInt64) throws -> EpochStreams {
        let items = try plan(epoch: epoch)
        let shards: [ShardReader]? = { if case .replay = source { return readers(epoch: epoch) }; return nil }()
        return try EpochStreams(plan: items, epochShards: shards, order: order, slicing: slicing, seed: seed, trainingEpoch: epoch)
    }

    /// The cursors of run epoch `epoch`'s shards (made once per epoch).
    func cursors(epoch: Int) -> [ShardCursor] {
        if cursorEpoch != epoch {
            cursors = readers(epoch: epoch).map { $0.makeCursor(cachedBlocks: cachedBlocks) }
            cursorEpoch = epoch
        }
        return cursors
    }

    /// The epoch's training samples in reading order (records of evaluation images are skipped).
    func plan(epoch: Int) throws -> [PlanItem] {
        switch source {
        case .replay:
            var items: [PlanItem] = []
            for (s, reader) in readers(epoch: epoch).enumerated() {
                let ids = try reader.sampleIDs()
                for ordinal in 0..<reader.recordCount {
                    let id = Int(ids[ordinal])
                    guard id < map.storeIndex.count, map.storeIndex[id] >= 0 else {
                        throw ShardError(.indexOutOfRange, "sample id \(id) is not an image of \(store.path)",
                                         at: ShardLocation(file: reader.path, record: ordinal, sampleID: UInt32(id)))
                    }
                    let index = map.storeIndex[id]
                    if training[index] && !excluded.contains(index) { items.append(PlanItem(storeIndex: index, shard: s, ordinal: ordinal)) }
                }
            }
            return items
        case let .recipe(_, seed):
            return TeacherPass.epochOrder(trainIndices: trainIndices, seed: seed, epoch: epoch)
                .filter { !excluded.contains($0) }.map { PlanItem(storeIndex: $0, shard: -1, ordinal: -1) }
        }
    }

    /// The item's parameters: drawn, or decoded from its record (whose mix partner must be a training image).
    func parameters(_ item: PlanItem, epoch: Int) throws -> AugmentationParameters {
        if let recipeViews { return try recipeViews.parameters(epoch: epoch, index: item.storeIndex) }
        let cursor = cursors(epoch: epoch)[item.shard]
        let reader = cursor.reader
        let record = try naming(item.ordinal, reader) { try cursor.record(at: item.ordinal) }
        let location = ShardLocation(file: reader.path, record: item.ordinal, sampleID: record.sampleID)
        let parameters: AugmentationParameters
        do {
            parameters = try record.augmentation.withUnsafeBytes {
                try AugmentationParameters(code: $0, outputHeight: size, outputWidth: size)
            }
        } catch let error as ShardError {
            throw ShardError(error.code, error.message, at: location)
        }
        if let mix = parameters.mix {
            let partner = Int(mix.partner)
            guard partner < map.storeIndex.count, map.storeIndex[partner] >= 0, training[map.storeIndex[partner]] else {
                throw ShardError(.badAugmentation, "mix partner \(mix.partner) is not a training image of this run "
                                 + "(held-out or validation images must never be mixed in)", at: location)
            }
        }
        return parameters
    }

    /// Runs `body`, adding the file and record to a ShardError that lacks them.
    func naming<T>(_ ordinal: Int, _ reader: ShardReader, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ShardError {
            var location = error.location
            if location.file == nil { location.file = reader.path }
            if location.record == nil { location.record = ordinal }
            throw ShardError(error.code, error.message, at: location)
        }
    }
}
