import Augment
import Distill
import Foundation
import ImageStore
import TinyViT

/// Trained teachers kept between runs of the main job (``DistillDemo/Options/teacherCache``): each in a folder
/// named by the fingerprint of everything that decides it — the content checksum, size and classes of the store
/// it trains on, its architecture, every training option (epochs, learning rates, seed, batch, splits, …) and
/// the SHA-256 of its recipe's canonical JSON. The folder is the teacher's run folder (`model.safetensors`,
/// `metrics.csv`, …); `fingerprint.json`, written last, marks it complete, so a run stopped mid-training is
/// trained again, never reused.
enum TeacherCache {
    struct Fingerprint: Codable, Equatable {
        var store: String
        var storeImages: Int
        var storeClasses: Int
        /// The store's metadata CRC-32 (every image's pixel CRC, the keys, the class names), hex.
        var storeChecksum: String
        var architecture: TinyViTConfiguration
        var training: TrainOptions
        var recipe: String
        var recipeHash: String

        enum CodingKeys: String, CodingKey {
            case store, storeImages = "store_images", storeClasses = "store_classes", storeChecksum = "store_checksum"
            case architecture, training, recipe, recipeHash = "recipe_hash"
        }

        /// What decides the teacher (the store's path and the recipe's name do not).
        var identity: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let architectureJSON = (try? encoder.encode(architecture)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            let trainingJSON = (try? encoder.encode(training)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return "images=\(storeImages);classes=\(storeClasses);checksum=\(storeChecksum);architecture=\(architectureJSON);"
                + "training=\(trainingJSON);recipe=\(recipeHash)"
        }

        var hash: String { SHA256.hex(Array(identity.utf8)) }
    }

    /// What `fingerprint.json` holds.
    struct Record: Codable {
        var fingerprint: Fingerprint
        var hash: String
        var trainSeconds: Double
        var top1: Double
        var top5: Double
        var split: String
        var evaluationImages: Int

        enum CodingKeys: String, CodingKey {
            case fingerprint, hash, trainSeconds = "train_seconds", top1, top5, split, evaluationImages = "evaluation_images"
        }
    }

    struct Entry {
        var folder: String
        var fingerprint: Fingerprint
        var weights: String { folder + "/model.safetensors" }
        var recordPath: String { folder + "/fingerprint.json" }

        /// The record, when the folder holds a finished teacher of this fingerprint.
        var record: Record? {
            guard FileManager.default.fileExists(atPath: weights), let data = FileManager.default.contents(atPath: recordPath),
                  let record = try? JSONDecoder().decode(Record.self, from: data),
                  record.hash == fingerprint.hash else { return nil }
            return record
        }

        var isComplete: Bool { record != nil }
        var trainSeconds: Double { record?.trainSeconds ?? 0 }

        /// Marks the folder complete (after `model.safetensors` is written).
        func complete(trainSeconds: Double, evaluation: Evaluation, split: String) throws {
            let record = Record(fingerprint: fingerprint, hash: fingerprint.hash, trainSeconds: trainSeconds, top1: evaluation.top1,
                                top5: evaluation.top5, split: split, evaluationImages: evaluation.count)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do { try encoder.encode(record).write(to: URL(fileURLWithPath: recordPath), options: .atomic) } catch {
                throw DistillError(.io, "cannot write the teacher's fingerprint: \(error.localizedDescription)", file: recordPath)
            }
        }
    }

    static func fingerprint(store: ImageStore, configuration: TinyViTConfiguration, options: TrainOptions,
                            recipe: NamedRecipe) -> Fingerprint {
        Fingerprint(store: store.path, storeImages: store.count, storeClasses: store.classCount,
                    storeChecksum: String(format: "%08x", store.metadataCRC), architecture: configuration, training: options,
                    recipe: recipe.name, recipeHash: recipe.hash)
    }

    /// The folder of this teacher in `cache` (created): complete or not.
    static func entry(in cache: String, store: ImageStore, configuration: TinyViTConfiguration, options: TrainOptions,
                      recipe: NamedRecipe) throws -> Entry {
        let fingerprint = fingerprint(store: store, configuration: configuration, options: options, recipe: recipe)
        let folder = cache + "/teacher-" + fingerprint.hash.prefix(16)
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw DistillError(.io, "cannot create the teacher cache: \(error.localizedDescription)", file: folder)
        }
        return Entry(folder: folder, fingerprint: fingerprint)
    }
}
