import Distill
import Augment
import ImageStore
import ShardFormat

/// One stored record made visible: the view the teacher saw, re-rendered from the record's stored
/// parameters on the store's image (and its mix partner's), with the record's top classes.
public struct RenderedRecord: Sendable {
    /// The sample's key.
    public var key: String
    /// The sample id.
    public var sampleID: UInt32
    /// The epoch of the record's shard.
    public var epoch: Int
    /// The rank of the record's shard.
    public var rank: Int
    /// The record's ordinal in its shard.
    public var ordinal: Int
    /// uint8 view (the Swift replay's `render`: erase noise mapped to uint8, mixup rounded).
    public var image: RGBImage
    /// The record's entries in stored order (descending for sorted shards): class index and value.
    public var entries: [(classIndex: Int, value: Float)]
}

/// Renders records of a dataset written with `params` augmentation codes (a teacher pass) on the image
/// store they were drawn from: the debugging view of stored augmentations, and the reference the Python
/// replay (`tinyshard.replay`) is tested against.
public final class RecordRenderer {
    /// The image store the dataset's views were drawn from.
    public let store: ImageStore
    /// The dataset (with `params` augmentation) whose records are rendered.
    public let dataset: ShardDataset
    private let map: SampleMap

    /// Throws when the store's keys are not the dataset's (the sample ids would name other images).
    public init(store: ImageStore, dataset: ShardDataset) throws {
        self.store = store
        self.dataset = dataset
        map = try SampleMap(store: store, keys: dataset.keys.loadAll())
    }

    /// The record of `key` in `epoch` (the lowest rank's, when several shards hold it).
    public func render(epoch: Int, key: String) throws -> RenderedRecord {
        guard dataset.epochs.contains(epoch) else {
            throw DistillError(.invalidArgument, "the dataset has no epoch \(epoch) (epochs \(dataset.epochs.map(String.init).joined(separator: ", ")))", file: dataset.directory)
        }
        guard try dataset.keys.id(of: key) != nil else {
            throw DistillError(.invalidArgument, "no sample has the key '\(key)'", file: dataset.directory)
        }
        guard let (shard, ordinal) = try dataset.locate(epoch: epoch, key: key) else {
            throw DistillError(.missingSample, "key '\(key)' has no record in epoch \(epoch)", file: dataset.directory)
        }
        return try render(shard: shard, ordinal: ordinal)
    }

    /// The shards of `epoch` by rank (what `render(shard:ordinals:)` walks).
    public func shards(epoch: Int) -> [ShardReader] {
        dataset.shards(epoch: epoch).sorted { $0.schema.rank < $1.schema.rank }
    }

    /// Records `ordinals` (clamped to the shard) of one shard, in order.
    public func render(shard: ShardReader, ordinals: Range<Int>) throws -> [RenderedRecord] {
        let cursor = shard.makeCursor()
        return try ordinals.clamped(to: 0..<shard.recordCount).map { try render(shard: shard, ordinal: $0, cursor: cursor) }
    }

    /// Renders record `ordinal` of `shard` with a cursor of its own; throws when the record, its image or its partner's
    /// cannot be read, or its parameters do not fit the image.
    public func render(shard: ShardReader, ordinal: Int) throws -> RenderedRecord {
        try render(shard: shard, ordinal: ordinal, cursor: shard.makeCursor())
    }

    private func render(shard: ShardReader, ordinal: Int, cursor: ShardCursor) throws -> RenderedRecord {
        guard case let .params(height, width) = shard.schema.augmentation else {
            throw DistillError(.invalidArgument, "records carry no augmentation parameters (kind \(shard.schema.augmentation.name)); only a teacher pass's params shards can be rendered", file: shard.path)
        }
        let record: ShardRecord
        let parameters: AugmentationParameters
        do {
            record = try cursor.record(at: ordinal)
            parameters = try record.augmentation.withUnsafeBytes {
                try AugmentationParameters(code: $0, outputHeight: height, outputWidth: width)
            }
        } catch let error as ShardError {
            var location = error.location
            if location.file == nil { location.file = shard.path }
            if location.record == nil { location.record = ordinal }
            throw ShardError(error.code, error.message, at: location)
        }
        let id = Int(record.sampleID)
        guard id < map.storeIndex.count, map.storeIndex[id] >= 0 else {
            throw DistillError(.invalidArgument, "sample id \(id) is not an image of \(store.path)", file: shard.path, item: "record \(ordinal)")
        }
        let index = map.storeIndex[id]
        var partner: RGBImage?
        if let mix = parameters.mix {
            guard Int(mix.partner) < map.storeIndex.count else {
                throw DistillError(.invalidArgument, "mix partner \(mix.partner) is not a sample of \(store.path)", file: shard.path, item: "record \(ordinal)")
            }
            partner = try store.image(at: map.storeIndex[Int(mix.partner)])
        }
        let image: RGBImage
        do {
            image = try Augmenter(outputWidth: width, outputHeight: height)
                .render(parameters, source: try store.image(at: index), partner: partner)
        } catch let error as AugmentError {
            throw DistillError(.mismatch, "\(error)", file: shard.path, item: "record \(ordinal) (key \((try? dataset.keys.key(id)) ?? "?"))")
        }
        return RenderedRecord(key: try dataset.keys.key(id), sampleID: record.sampleID, epoch: shard.schema.epoch,
                              rank: shard.schema.rank, ordinal: ordinal, image: image,
                              entries: zip(record.indices, record.values).map { (Int($0), Float($1)) })
    }
}
