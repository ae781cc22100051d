import ArgumentParser
import Foundation
import ImageStore

/// `tinyshard images`: your own images in, as an image store (Spec/IMAGESTORE.md) that `teacher` and
/// `train` read; inspect and verify a store.
struct Images: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import images (an ImageFolder tree of PNG/JPEG, .npy arrays, MNIST-style IDX files, the digits CSV) into an image store; inspect or verify one.",
        discussion: "Then: tinyshard teacher --images STORE ... and tinyshard train --images STORE ...",
        subcommands: [ImagesImport.self, ImagesInspect.self, ImagesVerify.self])
}

/// `tinyshard images import SOURCE --out STORE`, or `--idx IMAGES [--labels LABELS]` for MNIST-style IDX files.
struct ImagesImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Decode images into an image store (raw pixels, or JPEG with --encoding jpeg).",
        discussion: """
            SOURCE is a folder laid out as torchvision's ImageFolder (ROOT/CLASS/.../FILE.png|jpg|jpeg; classes are \
            the sub-folders sorted by name), a .npy of uint8 images [N, H, W, 3] or [N, H, W] (with --labels Y.npy), \
            or the digits CSV (.csv or .csv.gz). Instead of SOURCE, --idx IMAGES [--labels LABELS] reads MNIST / \
            Fashion-MNIST IDX files (gzip'ed or plain idx3-ubyte images, idx1-ubyte labels), checked strictly against \
            the bytes present; --skip M --limit N keeps images M ..< M+N. Files that cannot be imported are skipped and listed with the reason \
            (--strict: the first one is an error). --max-side shrinks larger images with an antialiased bicubic \
            filter (PIL's and torchvision's, the training crop's own). --encoding jpeg stores each image re-encoded \
            as a baseline JPEG (store version 2.0; smaller, decoded on every read).
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case auto, folder, npy, digits, idx }
    enum Encoding: String, ExpressibleByArgument, CaseIterable { case raw, jpeg }

    @Argument(help: "An ImageFolder root, a .npy file, or a digits .csv/.csv.gz (not with --idx).") var source: String?
    @Option(help: "MNIST-style IDX images (idx3-ubyte, gzip'ed or plain), instead of SOURCE; labels with --labels.") var idx: String?
    @Option(help: "The store to write (conventionally .tsimg).") var out: String
    @Option(help: "What SOURCE is (auto: a folder, *.npy, or *.csv / *.csv.gz; idx with --idx).") var format: Format = .auto
    @Option(help: "Shrink images whose longer side exceeds N pixels to N (aspect kept).") var maxSide: Int?
    @Option(help: "raw: decoded pixels (version 1.0); jpeg: one JPEG per image (version 2.0).") var encoding: Encoding = .raw
    @Option(help: "JPEG quality 1-100 (with --encoding jpeg; default 90).") var jpegQuality: Int?
    @Option(help: "JPEG chroma subsampling: 420 or 444 (with --encoding jpeg; default 420).") var jpegSubsampling: String?
    @Flag(help: "Stop at the first file that cannot be imported, or a class folder without images.") var strict = false
    @Option(help: "Threads decoding and encoding images (ImageFolder).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: ".npy: integer labels [N] (-1 = none); IDX: the idx1-ubyte labels file.") var labels: String?
    @Option(help: ".npy, IDX: a text file of class names, one per line (label i = line i).") var classNames: String?
    @Option(help: ".npy, IDX: key prefix (keys PREFIX_00000, ...; default npy or idx).") var keyPrefix: String?
    @Option(help: "IDX: import at most N images (both files are still checked whole).") var limit: Int?
    @Option(help: "IDX: leave out the first N images (keys keep the file's numbering).") var skip: Int?
    @Option(help: "digits: enlarge each 8x8 digit F times by pixel replication.") var upscale = 1
    @Flag(help: "Replace STORE if it exists.") var overwrite = false
    @Flag(help: "Print the summary as one JSON object.") var json = false

    func validate() throws {
        if let maxSide, maxSide < 1 { throw ValidationError("--max-side must be at least 1") }
        if let jpegQuality, !(1...100).contains(jpegQuality) { throw ValidationError("--jpeg-quality must be 1...100") }
        if let jpegSubsampling, ChromaSubsampling(rawValue: jpegSubsampling) == nil {
            throw ValidationError("--jpeg-subsampling must be 420 or 444")
        }
        if encoding == .raw, jpegQuality != nil || jpegSubsampling != nil {
            throw ValidationError("--jpeg-quality and --jpeg-subsampling need --encoding jpeg")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard (1...1024).contains(upscale) else { throw ValidationError("--upscale must be 1...1024") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let skip, skip < 0 { throw ValidationError("--skip must be at least 0") }
        switch (source, idx) {
        case (nil, nil): throw ValidationError("give SOURCE, or --idx IMAGES for IDX files")
        case (.some, .some): throw ValidationError("give SOURCE or --idx IMAGES, not both")
        default: break
        }
    }

    func run() throws {
        let kind = try resolvedFormat()
        let input = idx ?? source ?? ""
        if kind != .npy, kind != .idx, labels != nil || classNames != nil || keyPrefix != nil {
            throw CLIFailure("[usage] --labels, --class-names and --key-prefix are for .npy and IDX input")
        }
        if kind != .idx, limit != nil || skip != nil { throw CLIFailure("[usage] --limit and --skip are for IDX input (--idx)") }
        if kind != .digits, upscale != 1 { throw CLIFailure("[usage] --upscale is for the digits CSV") }
        if FileManager.default.fileExists(atPath: out), !overwrite {
            throw CLIFailure(file: out, code: "usage", "exists; pass --overwrite to replace it")
        }
        let storeEncoding: StoreEncoding = encoding == .raw ? .raw : .jpeg(
            quality: jpegQuality ?? 90, subsampling: jpegSubsampling.flatMap(ChromaSubsampling.init(rawValue:)) ?? .s420)
        let options = ImportOptions(maxSide: maxSide, encoding: storeEncoding, strict: strict, threads: threads)
        let bar = ProgressBar()
        let start = Date()
        let summary = try DistillCLI.run { () throws -> ImportSummary in
            let progress = { (done: Int, total: Int) in
                bar.draw(Double(done) / Double(max(total, 1)), "import \(done)/\(total) \(kind == .folder ? "files" : "images")",
                         force: done == total)
            }
            switch kind {
            case .folder:
                return try ImageFolderImport.importStore(from: input, to: out, options: options, progress: progress)
            case .npy:
                let names = try classNames.map(Self.readClassNames) ?? []
                return try NpyImport.importStore(images: input, labels: labels, to: out, keyPrefix: keyPrefix ?? "npy",
                                                 classNames: names, options: options, progress: progress)
            case .idx:
                let names = try classNames.map(Self.readClassNames) ?? []
                return try IdxImport.importStore(images: input, labels: labels, to: out, keyPrefix: keyPrefix ?? "idx",
                                                 classNames: names, skip: skip ?? 0, limit: limit, options: options, progress: progress)
            case .digits, .auto:
                return try DigitsImport.importStore(from: input, to: out, upscale: upscale, options: options, progress: progress)
            }
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        print(json ? Self.json(summary, store: out, seconds: seconds).text : Self.human(summary, source: input, store: out,
                                                                                         maxSide: maxSide, seconds: seconds),
              terminator: json ? "\n" : "")
    }

    private func resolvedFormat() throws -> Format {
        if let idx {
            guard format == .auto || format == .idx else { throw CLIFailure("[usage] --idx reads IDX files; --format \(format) needs SOURCE") }
            guard FileManager.default.fileExists(atPath: idx) else { throw CLIFailure(file: idx, code: "io", "no such file") }
            return .idx
        }
        guard let source else { throw CLIFailure("[usage] give SOURCE, or --idx IMAGES") }
        guard format != .idx else { throw CLIFailure("[usage] IDX files are read with --idx IMAGES [--labels LABELS]") }
        guard format == .auto else { return format }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isFolder) else {
            throw CLIFailure(file: source, code: "io", "no such file or folder")
        }
        if isFolder.boolValue { return .folder }
        let lower = source.lowercased()
        if lower.hasSuffix(".npy") { return .npy }
        if lower.hasSuffix(".csv") || lower.hasSuffix(".csv.gz") { return .digits }
        throw CLIFailure(file: source, code: "usage", "not a folder, .npy or .csv(.gz); say which with --format")
    }

    static func readClassNames(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure(file: path, code: "io", "cannot read") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIFailure(file: path, code: "bad-input", "not UTF-8 text") }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
            .reversed().drop(while: \.isEmpty).reversed()
    }

    static func human(_ s: ImportSummary, source: String, store: String, maxSide: Int?, seconds: Double) -> String {
        let classes = s.classNames.isEmpty ? s.labelHistogram.count : s.classNames.count
        var out = "imported \(s.images) images in \(classes) classes from \(source) to \(store) in \(String(format: "%.1f", seconds)) s\n"
        out += "  store: \(s.encoding), \(grouped(s.bytes)) bytes, \(grouped(s.bytes / max(s.images, 1))) bytes/image"
        if let maxSide { out += "; \(s.resized) resized to max side \(maxSide) (antialiased bicubic)" }
        out += "\n"
        out += "  classes: " + classLine(names: s.classNames, counts: s.labelHistogram) + "\n"
        if !s.skipped.isEmpty {
            out += "  skipped \(s.skipped.count) file\(s.skipped.count == 1 ? "" : "s"):\n"
            for file in s.skipped.prefix(50) { out += "    \(file.path): \(file.reason)\n" }
            if s.skipped.count > 50 { out += "    ... and \(s.skipped.count - 50) more (--json lists them all)\n" }
        }
        if !s.emptyClasses.isEmpty { out += "  empty classes (kept, no images): \(s.emptyClasses.joined(separator: ", "))\n" }
        return out
    }

    static func json(_ s: ImportSummary, store: String, seconds: Double) -> JSON {
        var encoding: [(String, JSON?)] = [("kind", .string(s.encoding.kind.rawValue))]
        if case let .jpeg(quality, subsampling) = s.encoding {
            encoding += [("quality", .int(quality)), ("subsampling", .string(subsampling.rawValue))]
        }
        return .object([
            ("store", .string(store)),
            ("images", .int(s.images)),
            ("classes", .int(s.classNames.isEmpty ? s.labelHistogram.count : s.classNames.count)),
            ("class_names", .array(s.classNames.map(JSON.string))),
            ("images_per_class", .array(s.labelHistogram.map(JSON.int))),
            ("encoding", .object(encoding)),
            ("bytes", .int(s.bytes)),
            ("bytes_per_image", .double(Double(s.bytes) / Double(max(s.images, 1)))),
            ("resized", .int(s.resized)),
            ("skipped", .array(s.skipped.map { .object([("file", .string($0.path)), ("reason", .string($0.reason))]) })),
            ("empty_classes", .array(s.emptyClasses.map(JSON.string))),
            ("seconds", .double(seconds)),
        ] as [(String, JSON?)])
    }

    /// "cat 4, dog 3" for a few classes; a range of counts for many.
    static func classLine(names: [String], counts: [Int]) -> String {
        if counts.isEmpty { return "none (unlabelled images)" }
        if counts.count <= 20 {
            return counts.enumerated().map { "\(names.isEmpty ? String($0.offset) : names[$0.offset]) \($0.element)" }.joined(separator: ", ")
        }
        return "\(counts.count), \(counts.min()!)-\(counts.max()!) images each"
    }
}

/// `tinyshard images inspect STORE`.
struct ImagesInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show an image store's version, encoding, images, classes, image sizes and bytes per image.")

    @Argument(help: "An image store.") var store: String
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "List every class (default: up to 20).") var allClasses = false

    func run() throws {
        let opened = try DistillCLI.run { try ImageStore(path: store, pixelCheck: .never) }
        var widths: [Int] = [], heights: [Int] = []
        for i in 0..<opened.count {
            let (w, h) = try DistillCLI.run { try opened.size(at: i) }
            widths.append(w)
            heights.append(h)
        }
        let (counts, unlabelled) = opened.labelHistogram()
        let n = max(opened.count, 1)
        let pixels = zip(widths, heights).reduce(0) { $0 + $1.0 * $1.1 }
        if json {
            print(JSON.object([
                ("store", .string(store)),
                ("version", .string(opened.kind == .raw ? "1.0" : "2.0")),
                ("encoding", .string(opened.kind.rawValue)),
                ("images", .int(opened.count)),
                ("classes", .int(opened.classCount)),
                ("class_names", .array(opened.classNames.map(JSON.string))),
                ("images_per_class", .array(counts.map(JSON.int))),
                ("unlabelled", .int(unlabelled)),
                ("bytes", .int(opened.fileBytes)),
                ("data_bytes", .int(opened.dataBytes)),
                ("bytes_per_image", .double(Double(opened.fileBytes) / Double(n))),
                ("width", .object([("min", .int(widths.min() ?? 0)), ("max", .int(widths.max() ?? 0))])),
                ("height", .object([("min", .int(heights.min() ?? 0)), ("max", .int(heights.max() ?? 0))])),
                ("decoded_bytes", .int(pixels * 3)),
            ] as [(String, JSON?)]).text)
            return
        }
        var out = "image store \(store)\n"
        out += "version \(opened.kind == .raw ? "1.0, raw pixels" : "2.0, JPEG (decoded on read)"): \(opened.count) images, "
        out += "\(opened.classCount) classes\(opened.classNames.isEmpty ? " (unnamed)" : ""), \(unlabelled) unlabelled\n"
        out += "bytes \(ImagesImport.grouped(opened.fileBytes)): image data \(ImagesImport.grouped(opened.dataBytes)) "
        out += "(\(ImagesImport.grouped(opened.dataBytes / n)) per image), index+keys+names \(ImagesImport.grouped(opened.fileBytes - opened.dataBytes - 64))\n"
        if !widths.isEmpty {
            out += "sizes: width \(widths.min()!)-\(widths.max()!), height \(heights.min()!)-\(heights.max()!), "
            out += "mean \(widths.reduce(0, +) / n)x\(heights.reduce(0, +) / n); decoded \(ImagesImport.grouped(pixels * 3)) bytes"
            if opened.kind == .jpeg, pixels > 0 {
                out += String(format: " (stored at %.3f bytes/pixel, %.1fx smaller)", Double(opened.dataBytes) / Double(pixels),
                              Double(pixels * 3) / Double(max(opened.dataBytes, 1)))
            }
            out += "\n"
        }
        if opened.classCount > 0 {
            let shown = allClasses ? counts.count : min(counts.count, 20)
            out += "classes (label, name, images):\n"
            for label in 0..<shown {
                out += "  \(label)\t\(opened.classNames.isEmpty ? "-" : opened.classNames[label])\t\(counts[label])\n"
            }
            if shown < counts.count { out += "  ... \(counts.count - shown) more (--all-classes)\n" }
        }
        print(out, terminator: "")
    }
}

/// `tinyshard images verify STORE`: exit 0 clean, 1 problems, 2 unreadable.
struct ImagesVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an image store against every rule of Spec/IMAGESTORE.md, every image's checksum and (JPEG) decode.",
        discussion: "Exit 0 when clean, 1 when problems were found, 2 when STORE cannot be read.")

    @Argument(help: "An image store.") var store: String
    @Flag(help: "Print one JSON object: ok, store, encoding, images, bytes, seconds, problems.") var json = false
    @Option(help: "List at most this many problems (the rest are counted).") var maxProblems = 100
    @Option(help: "Threads checking images.") var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard maxProblems >= 0 else { throw ValidationError("--max-problems must be at least 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: store, isDirectory: &isFolder) else {
            throw CLIFailure(file: store, code: "io", "no such file")
        }
        guard !isFolder.boolValue else { throw CLIFailure(file: store, code: "io", "is a folder, not an image store") }
        let bar = ProgressBar()
        let start = Date()
        let report = ImageStoreVerifier(maxProblems: maxProblems, threads: threads).verify(path: store) { done, total in
            bar.draw(Double(done) / Double(max(total, 1)), "verify \(done)/\(total) images")
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(start)
        if report.kind == nil, let only = report.problems.first, only.code == .io { throw CLIFailure(only.description) }
        if json {
            print(JSON.object([
                ("ok", .bool(report.isClean)),
                ("store", .string(store)),
                ("encoding", report.kind.map { .string($0.rawValue) } ?? .null),
                ("images", .int(report.images)),
                ("bytes", .int(report.bytes)),
                ("seconds", .double(seconds)),
                ("problems", .array(report.problems.map { problem in
                    JSON.object([
                        ("code", .string(problem.code.rawValue)),
                        ("image", problem.image.map(JSON.int)),
                        ("key", problem.key.map(JSON.string)),
                        ("message", .string(problem.message)),
                    ] as [(String, JSON?)])
                })),
                ("omitted_problems", .int(report.omittedProblems)),
            ] as [(String, JSON?)]).text)
        } else {
            var out = "\(store): \(report.images) images (\(report.kind?.rawValue ?? "unreadable")), "
            out += "\(report.bytes) bytes checked in \(String(format: "%.2f", seconds)) s\n"
            let total = report.problems.count + report.omittedProblems
            if total == 0 {
                out += "OK: no problems\n"
            } else {
                out += "FAILED: \(total) problem\(total == 1 ? "" : "s")\n"
                for problem in report.problems { out += "  \(problem)\n" }
                if report.omittedProblems > 0 { out += "  ... and \(report.omittedProblems) more (raise --max-problems to list them)\n" }
            }
            print(out, terminator: "")
        }
        if !report.isClean { throw CLIFailure.exit(ExitStatus.problems) }
    }
}

extension ImagesImport {
    /// 1234567 → "1,234,567".
    static func grouped(_ value: Int) -> String {
        let digits = String(abs(value))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }
}
