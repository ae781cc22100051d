import DemoData
import Foundation
import ShardFormat
import Interchange
import XCTest
@testable import ShardConvert

final class NpyFormatTests: XCTestCase {
    func testRoundTripOfEachDType() throws {
        let folder = TemporaryFolder("npy")
        try NpyWriter.write([Float]([1.5, -2, 3.25, 0, .infinity, 7]), shape: [2, 3], to: folder.file("f.npy"))
        try NpyWriter.write([Int32.min, -1, 0, Int32.max], shape: [4], to: folder.file("i.npy"))
        try NpyWriter.write([UInt8](0..<24), shape: [2, 3, 4], to: folder.file("u.npy"))
        try NpyWriter.write([Float](repeating: 0, count: 0), shape: [0, 5], to: folder.file("empty.npy"))

        let f = try NpyReader(path: folder.file("f.npy"))
        XCTAssertEqual(f.dtype, .float32)
        XCTAssertEqual(f.shape, [2, 3])
        XCTAssertEqual(f.header.dataOffset % 64, 0)
        XCTAssertEqual(try f.readAll(as: Float.self), [1.5, -2, 3.25, 0, .infinity, 7])
        let i = try NpyReader(path: folder.file("i.npy"))
        XCTAssertEqual(i.shape, [4])
        XCTAssertEqual(try i.readAll(as: Int32.self), [Int32.min, -1, 0, Int32.max])
        let u = try NpyReader(path: folder.file("u.npy"))
        XCTAssertEqual(u.rows, 2)
        XCTAssertEqual(u.rowLength, 12)
        var rows: [UInt8] = []
        try u.readRows(1, into: &rows)
        XCTAssertEqual(rows, [UInt8](0..<12))
        try u.readRows(1, into: &rows)
        XCTAssertEqual(rows, [UInt8](12..<24))
        XCTAssertEqual(try NpyReader(path: folder.file("empty.npy")).shape, [0, 5])
    }

    /// The header numpy itself writes (`np.save` of float32 zeros(2, 3)), byte for byte.
    func testHeaderMatchesNumpy() {
        let header = NpyHeader.encode(dtype: .float32, shape: [2, 3])
        let text = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        XCTAssertEqual(header.count, 128)
        XCTAssertEqual(Array(header[0..<10]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0])
        XCTAssertEqual(String(decoding: header[10...], as: UTF8.self),
                       text + String(repeating: " ", count: 118 - text.count - 1) + "\n")
        XCTAssertTrue(String(decoding: NpyHeader.encode(dtype: .int32, shape: [5]), as: UTF8.self).contains("'shape': (5,)"))
    }

    private func rawFile(_ folder: TemporaryFolder, major: UInt8, header: String, data: [UInt8]) throws -> String {
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let text = Array(header.utf8)
        if major == 1 {
            bytes += [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
        } else {
            bytes += [UInt8(text.count & 0xFF), UInt8((text.count >> 8) & 0xFF), 0, 0]
        }
        let path = folder.file("raw-\(UUID().uuidString).npy")
        try Data(bytes + text + data).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testVersion2And3Headers() throws {
        let folder = TemporaryFolder("npy")
        let data: [UInt8] = [1, 2, 3]
        let v2 = try NpyReader(path: try rawFile(folder, major: 2, header: "{\"descr\": \"|u1\", \"shape\": (3,), \"fortran_order\": False}\n", data: data))
        XCTAssertEqual(v2.header.majorVersion, 2)
        XCTAssertEqual(try v2.readAll(as: UInt8.self), data)
        let v3 = try NpyReader(path: try rawFile(folder, major: 3, header: "{'descr': '|u1', 'fortran_order': False, 'shape': (3L,), }   \n", data: data))
        XCTAssertEqual(v3.header.majorVersion, 3)
        XCTAssertEqual(v3.shape, [3])
    }

    func testStrictErrors() throws {
        let folder = TemporaryFolder("npy")
        func expect(_ header: String, data: [UInt8] = [0, 0, 0, 0], major: UInt8 = 1, _ fragment: String, line: UInt = #line) throws {
            let path = try rawFile(folder, major: major, header: header, data: data)
            XCTAssertThrowsError(try NpyReader(path: path), line: line) { error in
                let error = error as? ConversionError
                XCTAssertEqual(error?.code, "bad-npy", line: line)
                XCTAssertEqual(error?.file, path, line: line)
                XCTAssertTrue(error?.message.contains(fragment) ?? false, "\(String(describing: error))", line: line)
            }
        }
        try expect("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", "Fortran")
        try expect("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", "big-endian")
        try expect("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", "'<c8'")
        try expect("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", "truncated")
        try expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", data: [0, 0, 0, 0, 9], "follow")
        try expect("{'descr': '<f4', 'shape': (1,), }\n", "expected descr")
        try expect("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", major: 4, "version 4.0")
        try expect("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }\n", "unexpected value")
        let notNpy = folder.file("text.npy")
        try Data("hello, world".utf8).write(to: URL(fileURLWithPath: notNpy))
        XCTAssertThrowsError(try NpyReader(path: notNpy)) { XCTAssertTrue("\($0)".contains("magic")) }
        XCTAssertThrowsError(try NpyReader(path: folder.file("absent.npy"))) { XCTAssertEqual(($0 as? ConversionError)?.code, "io") }
    }
}

final class NpyImportTests: XCTestCase {
    /// Deterministic logits with planted ties.
    static func logits(rows: Int, classes: Int) -> [Float] {
        var random = SeededGenerator(seed: 7)
        var values = (0..<(rows * classes)).map { _ in Float(3 * random.normal()) }
        for row in 0..<rows {  // ties: classes 5 and 2 equal and the largest, so they lead the top-K, 2 first
            values[row * classes + 5] = 20
            values[row * classes + 2] = 20
        }
        return values
    }

    /// float64 softmax and top-K computed here, independently of the converter.
    static func reference(_ row: ArraySlice<Float>, k: Int, temperature: Double) -> (indices: [Int32], bits: [UInt16]) {
        let z = row.map(Double.init)
        let order = z.indices.sorted { z[$0] != z[$1] ? z[$0] > z[$1] : $0 < $1 }
        let m = z.max()!
        var sum = 0.0
        for value in z { sum += Foundation.exp((value - m) / temperature) }
        let top = order.prefix(k)
        return (top.map { Int32($0) }, top.map { Float16(Foundation.exp((z[$0] - m) / temperature) / sum).bitPattern })
    }

    func testLogitsBecomeSoftmaxTopK() throws {
        let folder = TemporaryFolder("npy-import")
        let (rows, classes, k, temperature) = (40, 30, 6, 2.0)
        let logits = Self.logits(rows: rows, classes: classes)
        try NpyWriter.write(logits, shape: [rows, classes], to: folder.file("logits.npy"))
        let keys = (0..<rows).map { "sample-\(($0 * 17) % rows)" }  // not sorted: ids differ from rows
        try Data(keys.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: folder.file("keys.txt")))
        var progress: [ConversionProgress] = []
        let summary = try NpyImporter.importDataset(
            NpyImportOptions(outputs: folder.file("logits.npy"), keys: folder.file("keys.txt"), kind: .logits,
                             temperature: temperature, k: k, epoch: 3, rank: 1, recordsPerBlock: 16),
            to: folder.file("dataset"), progress: { progress.append($0) })
        XCTAssertEqual(summary.recordsWritten, rows)
        XCTAssertEqual(summary.classes, classes)
        XCTAssertEqual(progress.last, ConversionProgress(stage: "rows", done: rows, total: rows))

        let dataset = try ShardDataset(directory: folder.file("dataset"))
        XCTAssertTrue(ShardVerifier().verifyDataset(directory: folder.file("dataset")).isClean)
        let shard = try XCTUnwrap(dataset.shards.first)
        XCTAssertEqual(shard.schema.temperature, temperature)
        XCTAssertEqual(shard.schema.epoch, 3)
        XCTAssertEqual(shard.schema.rank, 1)
        XCTAssertEqual(shard.schema.augmentation, AugmentationKind.none)
        for row in 0..<rows {
            let record = try shard.record(at: row)
            XCTAssertEqual(try dataset.keys.key(Int(record.sampleID)), keys[row])
            let expected = Self.reference(logits[(row * classes)..<((row + 1) * classes)], k: k, temperature: temperature)
            XCTAssertEqual(record.indices, expected.indices, "row \(row)")
            XCTAssertEqual(record.values.map(\.bitPattern), expected.bits, "row \(row)")
            XCTAssertEqual(Array(record.indices.prefix(2)), [2, 5], "ties go to the lower class index")
        }
    }

    func testProbabilitiesWithSeedsAndParams() throws {
        let folder = TemporaryFolder("npy-import")
        let (rows, classes, k) = (12, 8, 3)
        var probabilities: [Float] = []
        for row in 0..<rows {
            var p = (0..<classes).map { Float(($0 * 5 + row) % classes + 1) }
            let sum = p.reduce(0, +)
            p = p.map { $0 / sum }
            probabilities += p
        }
        try NpyWriter.write(probabilities, shape: [rows, classes], to: folder.file("p.npy"))
        let keys = (0..<rows).map { "k\($0)" }
        try Data(keys.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: folder.file("keys.txt")))
        let seeds = (0..<rows).map { Int32($0 * 1_000_003 - 5_000_000) }
        try NpyWriter.write(seeds, shape: [rows], to: folder.file("seeds.npy"))

        _ = try NpyImporter.importDataset(
            NpyImportOptions(outputs: folder.file("p.npy"), keys: folder.file("keys.txt"), kind: .probabilities, k: k,
                             augmentation: .seed, augmentationCodes: folder.file("seeds.npy")),
            to: folder.file("seeded"))
        let seeded = try ShardDataset(directory: folder.file("seeded"))
        for row in 0..<rows {
            let record = try seeded.shards[0].record(at: row)
            XCTAssertEqual(record.seed, seeds[row])
            let expected = (0..<classes).sorted { probabilities[row * classes + $0] > probabilities[row * classes + $1] }.prefix(k)
            XCTAssertEqual(record.indices, expected.map { Int32($0) })
            XCTAssertEqual(record.values, expected.map { Float16(Double(probabilities[row * classes + $0])) })
        }

        var random = SeededGenerator(seed: 3)
        let augmentation = SyntheticAugmentation(outputHeight: 64, outputWidth: 64)
        var codes: [UInt8] = []
        for row in 0..<rows {
            codes += try augmentation.parameters(sourceWidth: 100, sourceHeight: 80, partner: UInt32((row + 1) % rows),
                                                 partnerWidth: 90, partnerHeight: 90, using: &random)
                .encoded(outputHeight: 64, outputWidth: 64)
        }
        try NpyWriter.write(codes, shape: [rows, 80], to: folder.file("codes.npy"))
        _ = try NpyImporter.importDataset(
            NpyImportOptions(outputs: folder.file("p.npy"), keys: folder.file("keys.txt"), kind: .probabilities, k: k,
                             augmentation: .params(outputHeight: 64, outputWidth: 64), augmentationCodes: folder.file("codes.npy")),
            to: folder.file("params"))
        let params = try ShardDataset(directory: folder.file("params"))
        for row in 0..<rows {
            XCTAssertEqual(try params.shards[0].record(at: row).augmentation, Array(codes[(row * 80)..<((row + 1) * 80)]))
        }

        // Codes that do not fit the kind, and params codes that break the spec's rules.
        XCTAssertThrowsError(try NpyImporter.importDataset(
            NpyImportOptions(outputs: folder.file("p.npy"), keys: folder.file("keys.txt"), kind: .probabilities, k: k,
                             augmentation: .params(outputHeight: 64, outputWidth: 64), augmentationCodes: folder.file("seeds.npy")),
            to: folder.file("bad"))) { XCTAssertEqual(($0 as? ConversionError)?.file, folder.file("seeds.npy")) }
        XCTAssertThrowsError(try NpyImporter.importDataset(
            NpyImportOptions(outputs: folder.file("p.npy"), keys: folder.file("keys.txt"), kind: .probabilities, k: k,
                             augmentation: .params(outputHeight: 32, outputWidth: 32), augmentationCodes: folder.file("codes.npy")),
            to: folder.file("bad"))) { error in
            let error = error as? ConversionError
            XCTAssertEqual(error?.code, "bad-augmentation")
            XCTAssertEqual(error?.file, folder.file("codes.npy"))
            XCTAssertNotNil(error?.record)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("bad/keys.tsk")), "a failed conversion leaves nothing")
    }

    func testBadInputs() throws {
        let folder = TemporaryFolder("npy-import")
        var logits = Self.logits(rows: 4, classes: 6)
        try NpyWriter.write(logits, shape: [4, 6], to: folder.file("ok.npy"))
        logits[2 * 6 + 3] = .nan
        try NpyWriter.write(logits, shape: [4, 6], to: folder.file("nan.npy"))
        try NpyWriter.write([Int32](repeating: 0, count: 24), shape: [4, 6], to: folder.file("int.npy"))
        try Data("a\nb\nc\nd\n".utf8).write(to: URL(fileURLWithPath: folder.file("keys.txt")))
        try Data("a\nb\nc\n".utf8).write(to: URL(fileURLWithPath: folder.file("three.txt")))
        try Data("a\nb\na\nd\n".utf8).write(to: URL(fileURLWithPath: folder.file("dup.txt")))
        func expect(_ outputs: String, keys: String = "keys.txt", k: Int = 2, code: String, file: String, line: UInt = #line) {
            XCTAssertThrowsError(try NpyImporter.importDataset(
                NpyImportOptions(outputs: folder.file(outputs), keys: folder.file(keys), kind: .logits, k: k),
                to: folder.file("out")), line: line) { error in
                guard let error = error as? ConversionError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(error.code, code, "\(error)", line: line)
                XCTAssertEqual(error.file, file.isEmpty ? nil : folder.file(file), "\(error)", line: line)
            }
        }
        expect("nan.npy", code: "bad-value", file: "nan.npy")
        expect("int.npy", code: "bad-npy", file: "int.npy")
        expect("ok.npy", keys: "three.txt", code: "bad-keys", file: "three.txt")
        expect("ok.npy", keys: "dup.txt", code: "bad-keys", file: "dup.txt")
        expect("ok.npy", k: 7, code: "invalid-argument", file: "")
    }

    func testTopKSelection() {
        let row: [Float] = [1, 5, 3, 5, -2, 3, 9]
        var indices = [Int32](repeating: -1, count: 5)
        row.withUnsafeBufferPointer { r in indices.withUnsafeMutableBufferPointer { TopK.select(r, into: $0) } }
        XCTAssertEqual(indices, [6, 1, 3, 2, 5])
        var all = [Int32](repeating: -1, count: 7)
        row.withUnsafeBufferPointer { r in all.withUnsafeMutableBufferPointer { TopK.select(r, into: $0) } }
        XCTAssertEqual(all, [6, 1, 3, 2, 5, 0, 4])
    }
}
