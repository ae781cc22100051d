// The image store section: bytes per image and the cost of reading an image, raw pixels against JPEG,
// on the real photos of ../shared/fixtures/augment, with PIL's decode of the same JPEG files measured in
// the same run (when a Python with Pillow is found: $TINYSHARD_PYTHON, else python3).
import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor

/// One store layout of the photo set.
struct ImageStoreVariant {
    var name: String
    var encoding: StoreEncoding
    var maxSide: Int?
}

let imageStoreVariants = [
    ImageStoreVariant(name: "raw", encoding: .raw, maxSide: nil),
    ImageStoreVariant(name: "jpeg q90 4:2:0", encoding: .jpeg(quality: 90, subsampling: .s420), maxSide: nil),
    ImageStoreVariant(name: "jpeg q95 4:4:4", encoding: .jpeg(quality: 95, subsampling: .s444), maxSide: nil),
    ImageStoreVariant(name: "jpeg q75 4:2:0", encoding: .jpeg(quality: 75, subsampling: .s420), maxSide: nil),
    ImageStoreVariant(name: "raw, max side 256", encoding: .raw, maxSide: 256),
    ImageStoreVariant(name: "jpeg q90 4:2:0, max side 256", encoding: .jpeg(quality: 90, subsampling: .s420), maxSide: 256),
]

/// The fixture's source photos (uint8 HWC), sorted by name.
func benchPhotos(_ path: String) throws -> [(name: String, image: RGBImage)] {
    let file = try SafeTensors(contentsOf: URL(fileURLWithPath: path))
    return try file.integers.keys.filter { $0.hasSuffix(".source") }.sorted().map { key in
        let entry = file.integers[key]!
        return (String(key.dropLast(".source".count)), try RGBImage(width: entry.shape[1], height: entry.shape[0],
                                                                     pixels: entry.values.map { UInt8($0) }))
    }
}

func meanAbsoluteError(_ a: RGBImage, _ b: RGBImage) -> Double {
    var total = 0
    a.pixels.withUnsafeBufferPointer { pa in
        b.pixels.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count { total += abs(Int(pa[i]) - Int(pb[i])) }
        }
    }
    return Double(total) / Double(a.pixels.count)
}

/// PIL's `Image.open(f).convert("RGB")` per file, ms per image (the budget spread over the files), or nil.
func pilDecodeMilliseconds(_ files: [String], budget: Double) -> Double? {
    let python = ProcessInfo.processInfo.environment["TINYSHARD_PYTHON"] ?? "python3"
    let script = """
        import sys, time
        from PIL import Image
        files = sys.argv[2:]; budget = float(sys.argv[1])
        datas = [open(f, 'rb').read() for f in files]
        import io
        for d in datas: Image.open(io.BytesIO(d)).convert('RGB')
        n = 0; start = time.perf_counter()
        while time.perf_counter() - start < budget:
            for d in datas: Image.open(io.BytesIO(d)).convert('RGB'); n += 1
        print((time.perf_counter() - start) / n * 1000)
        """
    let result = run([python, "-c", script, String(budget)] + files)
    guard result.status == 0 else { return nil }
    return Double(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
}

func imageStoreTable(options: Options) throws {
    let photosPath = (options.fixtures as NSString).deletingLastPathComponent + "/augment/aug_reference.safetensors"
    guard FileManager.default.fileExists(atPath: photosPath) else {
        print("\n## Image store: skipped (no photos at \(photosPath))")
        return
    }
    let photos = try benchPhotos(photosPath)
    let sizes = photos.map { "\($0.name) \($0.image.width)x\($0.image.height)" }.joined(separator: ", ")
    print("\n## Image store: bytes and read time per image, raw against JPEG (one core)\n")
    print("Photos: \(sizes) (../shared/fixtures/augment). Read = `ImageStore.image(at:)` with the CRC check: a copy out")
    print("of the map (raw) or libturbojpeg's decode (JPEG). PIL = `Image.open().convert(\"RGB\")` of the same JPEG bytes in")
    print("this run. Resized crop = the training crop of a 224x224 view from the stored image (for scale). ImageNet-1k =")
    print("1,281,167 images at these photos' bytes/image. MAE = mean absolute error (grey levels) against the image before encoding.\n")
    print("| store | bytes/image | vs raw | ImageNet-1k at this size | encode ms/image | read ms/image | read img/s | PIL decode ms/image | resized crop 224 ms | MAE vs source |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    let imagenet = 1_281_167.0
    var rawBytes: [Int?: Double] = [:]
    var cropMilliseconds: [Int?: Double] = [:]
    for variant in imageStoreVariants {
        let path = options.work + "/photos-\(variant.name.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: ",", with: "")).tsimg"
        // The stored photos are the sources shrunk to the maximum side (when set); the reference for the
        // error is that image before encoding.
        let sources = try photos.map { photo in try variant.maxSide.map { try MaxSideResize.apply(photo.image, maxSide: $0) } ?? photo.image }
        let encodeRate = try rate(items: sources.count, budget: options.seconds / 2) {
            for source in sources { _ = try variant.encoding.encode(source) }
        }
        let encoded = try sources.map { try variant.encoding.encode($0) }
        let writer = try ImageStoreWriter(path: path, classNames: photos.map(\.name), encoding: variant.encoding)
        for (i, image) in encoded.enumerated() { try writer.append(key: photos[i].name, label: i, encoded: image) }
        try writer.finish()
        let store = try ImageStore(path: path)
        let perImage = Double(store.fileBytes) / Double(store.count)  // the whole file: header, data, index, keys, names
        if variant.encoding == .raw { rawBytes[variant.maxSide] = perImage }
        let readRate = try rate(items: store.count, budget: options.seconds) {
            for i in 0..<store.count { _ = try store.image(at: i) }
        }
        var error = 0.0
        for i in 0..<store.count { error += meanAbsoluteError(try store.image(at: i), sources[i]) }
        var pil: Double?
        if case .jpeg = variant.encoding {
            let files = try encoded.enumerated().map { i, image -> String in
                let file = options.work + "/photo-\(i).jpg"
                try Data(image.bytes).write(to: URL(fileURLWithPath: file))
                return file
            }
            pil = pilDecodeMilliseconds(files, budget: options.seconds)
        }
        if cropMilliseconds[variant.maxSide] == nil {
            let cropRate = try rate(items: sources.count, budget: options.seconds) {
                for source in sources {
                    let side = UInt16(min(source.width, source.height) * 3 / 4)
                    _ = try ResizedCrop.apply(source, box: PixelBox(x: 5, y: 5, width: side, height: side), outputWidth: 224, outputHeight: 224)
                }
            }
            cropMilliseconds[variant.maxSide] = 1000 / cropRate
        }
        let raw = rawBytes[variant.maxSide] ?? perImage
        print("| \(variant.name) | \(fmt(perImage)) | \(fmt(perImage / raw, 3)) | \(fmt(perImage * imagenet / 1e9, 0)) GB | \(variant.encoding == .raw ? "0 (copy)" : fmt(1000 / encodeRate, 2)) | \(fmt(1000 / readRate, 3)) | \(fmt(readRate)) | \(pil.map { fmt($0, 3) } ?? "n/a") | \(fmt(cropMilliseconds[variant.maxSide]!, 2)) | \(fmt(error / Double(store.count), 2)) |")
    }
}
