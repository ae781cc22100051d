import Augment
import Distill
import Foundation
import ImageStore

/// `distill-demo --dataset fashion-mnist`: the README's Fashion-MNIST study as one preset. The IDX files of
/// Debian's `dataset-fashion-mnist` are imported once into a cache folder — the students' store (the first
/// 15,000 training images), the teacher's (the other 45,000, keys disjoint: `fashion_15000` on) and the test
/// store (the official 10,000 t10k images) — and the teacher trained on the 45,000 is kept there under its
/// fingerprint (`TeacherCache`), so that later runs and every seed reuse it. Every model is evaluated on the
/// official test set.
public enum FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` puts the IDX files.
    public static let packageDirectory = "/usr/share/datasets/fashion-mnist"
    /// The ten Fashion-MNIST class names; label i is name i.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// The students' store: this many of the 60,000 training images (the first ones); the teacher's: the rest.
    public static let studentImages = 15_000
    /// Clothes keep their class in a mirror: flip 0.5, crop 50–100% of the area, nothing else.
    public static let recipeJSON = #"{"horizontal_flip":0.5,"crop":{"scale":[0.5,1.0]},"rand_augment":null,"erasing":null,"mix":null}"#

    /// The students' augmentation: ``recipeJSON`` as the recipe named `fashion`.
    public static var recipe: NamedRecipe {
        // The JSON above is valid (a test holds it to that).
        NamedRecipe(name: "fashion", recipe: try! AugmentationRecipe(json: Data(recipeJSON.utf8), file: "fashion"))
    }

    /// `~/.cache/tinyshard/fashion-mnist` (`$HOME`; the temporary folder when there is none).
    public static var defaultCache: String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSTemporaryDirectory()
        return home + "/.cache/tinyshard/fashion-mnist"
    }

    /// The three stores in the cache.
    public struct Stores: Sendable, Equatable {
        /// Path of the students' store (the first ``studentImages`` training images).
        public var students: String
        /// Path of the teacher's store (the remaining training images).
        public var teacher: String
        /// Path of the test store (the official 10,000 test images).
        public var test: String
    }

    static let files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    /// Imports the stores into `cache` unless the ones there were imported from these files (same sizes and
    /// modification times, recorded in `cache/stores.json`, written last) with the same split.
    /// - Throws: a one-line `DistillError` naming the package to install when the files are not there.
    public static func prepare(source: String = packageDirectory, cache: String, studentImages: Int = studentImages,
                               log: (String) -> Void = { print($0) }) throws -> Stores {
        for file in files where !FileManager.default.fileExists(atPath: source + "/" + file) {
            throw DistillError(.missing, "Fashion-MNIST is not installed: apt-get install -y dataset-fashion-mnist (Tools/setup.sh installs it)", file: "\(source)/\(file)")
        }
        do { try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true) } catch {
            throw DistillError(.io, "cannot create the cache folder: \(error.localizedDescription)", file: cache)
        }
        let stores = Stores(students: cache + "/fashion-train-first\(studentImages).tsimg", teacher: cache + "/fashion-train-rest.tsimg",
                            test: cache + "/fashion-t10k.tsimg")
        var stamp: [String: Any] = ["student_images": studentImages]
        for file in files {
            let attributes = try FileManager.default.attributesOfItem(atPath: source + "/" + file)
            stamp[file] = ["bytes": (attributes[.size] as? NSNumber)?.intValue ?? -1,
                           "modified": (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0] as [String: Any]
        }
        let stampPath = cache + "/stores.json"
        let stampData = try JSONSerialization.data(withJSONObject: stamp, options: [.prettyPrinted, .sortedKeys])
        let present = [stores.students, stores.teacher, stores.test].allSatisfy { (try? ImageStore(path: $0, pixelCheck: .never)) != nil }
        if present, FileManager.default.contents(atPath: stampPath) == stampData { return stores }
        try? FileManager.default.removeItem(atPath: stampPath)
        let names = classNames
        func importStore(_ images: String, _ labels: String, to path: String, skip: Int, limit: Int?) throws {
            let partial = path + ".partial"
            try? FileManager.default.removeItem(atPath: partial)
            try? FileManager.default.removeItem(atPath: path)
            let summary = try IdxImport.importStore(images: source + "/" + images, labels: source + "/" + labels, to: partial,
                                                    keyPrefix: images.hasPrefix("t10k") ? "fashion_test" : "fashion", classNames: names,
                                                    skip: skip, limit: limit)
            try FileManager.default.moveItem(atPath: partial, toPath: path)
            log("imported \(summary.images) Fashion-MNIST images into \(path)")
        }
        do {
            try importStore(files[0], files[1], to: stores.students, skip: 0, limit: studentImages)
            try importStore(files[0], files[1], to: stores.teacher, skip: studentImages, limit: nil)
            try importStore(files[2], files[3], to: stores.test, skip: 0, limit: nil)
        } catch let error as DistillError { throw error } catch {
            throw DistillError(.import, "\(error)", file: cache)
        }
        do { try stampData.write(to: URL(fileURLWithPath: stampPath), options: .atomic) } catch {
            throw DistillError(.io, "cannot write: \(error.localizedDescription)", file: stampPath)
        }
        return stores
    }

    /// The study's settings (README, "Where stored labels beat hard labels"): the t11m teacher on the 45,000, 30
    /// epochs, lr 2e-3, seed 0 for every student seed, cached; the s69k student, 20 epochs, lr 1.2e-2 for hard and
    /// distilled, K = 5; recipe `fashion` for the teacher, the pass and every student; every model on the test set.
    public static func options(stores: Stores, cache: String) -> DistillDemo.Options {
        var options = DistillDemo.Options()
        options.teacherImages = stores.teacher
        options.evaluationImages = stores.test
        options.teacherCache = cache + "/teachers"
        options.teacherSeed = 0
        options.teacherEpochs = 30
        options.teacherLearningRate = 2e-3
        options.studentEpochs = 20
        options.distillLearningRate = 1.2e-2
        options.hardLearningRate = 1.2e-2
        options.k = 5
        options.teacherRecipe = recipe
        options.studentRecipe = recipe
        return options
    }
}
