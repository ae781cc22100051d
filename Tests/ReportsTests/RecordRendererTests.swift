import DistillTestSupport
import Augment
import Foundation
import ImageStore
import ShardFormat
import XCTest
@testable import Distill
@testable import Reports

/// `RecordRenderer` (what `tinyshard render` shows), `ContactSheet` and `BitmapFont`, on a tiny teacher pass.
final class RecordRendererTests: XCTestCase {
    /// A teacher pass over 12 digits with mixup/cutmix drawn, and its renderer.
    private func renderer(_ name: String) throws -> (RecordRenderer, String) {
        let directory = try Fixture.temporaryDirectory(name)
        let store = try Fixture.store(count: 12, in: directory)
        var recipe = AugmentationRecipe.tinyViTWithMix
        recipe.mix?.probability = 0.7
        _ = try TeacherPass.run(store: store, teacher: try Fixture.teacher(), outputDirectory: directory + "/shards",
                                options: .init(epochs: 2, k: 3, seed: 5, batchSize: 8, recipe: NamedRecipe(name: "tinyvit-mix-p0.7", recipe: recipe), heldOutFraction: 0))
        return (try RecordRenderer(store: store, dataset: try ShardDataset(directory: directory + "/shards")), directory)
    }

    func testRenderedRecordIsTheStoredParametersReplayed() throws {
        let (renderer, directory) = try renderer("replay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var mixed = 0
        for shard in renderer.shards(epoch: 1) {
            let records = try renderer.render(shard: shard, ordinals: 0..<100)
            XCTAssertEqual(records.count, shard.recordCount)
            for rendered in records {
                let record = try shard.record(at: rendered.ordinal)
                let parameters = try record.augmentation.withUnsafeBytes {
                    try AugmentationParameters(code: $0, outputHeight: 16, outputWidth: 16)
                }
                let index = try XCTUnwrap(renderer.store.index(ofKey: rendered.key))
                let partner = try parameters.mix.map { try renderer.store.image(at: Int($0.partner)) }
                if parameters.mix != nil { mixed += 1 }
                let expected = try Augmenter(outputWidth: 16, outputHeight: 16)
                    .render(parameters, source: try renderer.store.image(at: index), partner: partner)
                XCTAssertEqual(rendered.image, expected)
                XCTAssertEqual(rendered.entries.map(\.classIndex), record.indices.map(Int.init))
                XCTAssertEqual(rendered.epoch, 1)
                // By key: the same record.
                let byKey = try renderer.render(epoch: 1, key: rendered.key)
                XCTAssertEqual(byKey.image, rendered.image)
                XCTAssertEqual(byKey.ordinal, rendered.ordinal)
            }
        }
        XCTAssertGreaterThan(mixed, 0, "the recipe should have mixed some records")
    }

    func testRenderErrorsNameTheProblem() throws {
        let (renderer, directory) = try renderer("errors")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertThrowsError(try renderer.render(epoch: 7, key: "digits_00000")) {
            XCTAssertTrue("\($0)".contains("[invalid-argument] the dataset has no epoch 7 (epochs 0, 1)"), "\($0)")
        }
        XCTAssertThrowsError(try renderer.render(epoch: 0, key: "nope")) {
            XCTAssertTrue("\($0)".contains("no sample has the key 'nope'"), "\($0)")
        }
        // A store whose keys are not the dataset's cannot be paired with it.
        let other = try Fixture.store(count: 5, in: directory + "/..")
        XCTAssertThrowsError(try RecordRenderer(store: other, dataset: renderer.dataset)) {
            XCTAssertTrue("\($0)".contains("[mismatch]"), "\($0)")
        }
    }

    func testContactSheetLaysOutViewsAndCaptions() throws {
        let (renderer, directory) = try renderer("sheet")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let shard = renderer.shards(epoch: 0)[0]
        let records = try renderer.render(shard: shard, ordinals: 0..<5)
        let sheet = try ContactSheet.draw(records, columns: 2, classNames: renderer.store.classNames)
        // 16-px views are enlarged 6x (to 96 px); cells hold the view, a 3-px gap and 4 caption lines.
        let cellWidth = 96 + ContactSheet.padding, cellHeight = 96 + 3 + 4 * BitmapFont.lineHeight + ContactSheet.padding
        XCTAssertEqual(sheet.width, 2 * cellWidth + ContactSheet.padding)
        XCTAssertEqual(sheet.height, 3 * cellHeight + ContactSheet.padding)
        for (n, record) in records.enumerated() {
            let x0 = ContactSheet.padding + (n % 2) * cellWidth, y0 = ContactSheet.padding + (n / 2) * cellHeight
            for (x, y) in [(0, 0), (15, 15), (7, 3)] {
                let p = sheet[x0 + x * 6 + 5, y0 + y * 6 + 5]
                let q = record.image[x, y]
                XCTAssertTrue(p == q, "cell \(n) pixel (\(x), \(y))")
            }
            var ink = 0
            for y in (y0 + 99)..<(y0 + 99 + 4 * BitmapFont.lineHeight) {
                for x in x0..<(x0 + 90) where sheet[x, y] == ContactSheet.ink { ink += 1 }
            }
            XCTAssertGreaterThan(ink, 100, "cell \(n) has a caption")
        }
        XCTAssertThrowsError(try ContactSheet.draw([]))
    }

    func testBitmapFont() throws {
        XCTAssertEqual(BitmapFont.width("abc"), 17)
        XCTAssertEqual(BitmapFont.width("", scale: 2), 0)
        XCTAssertEqual(BitmapFont.fitted("digits_00017", pixels: 41), "digits~")  // 7 characters are 41 pixels
        XCTAssertEqual(BitmapFont.fitted("short", pixels: 100), "short")
        var image = try RGBImage(width: 20, height: 9, fill: (255, 255, 255))
        BitmapFont.draw("I", into: &image, x: 1, y: 1, color: (0, 0, 0))
        // 'I' is a vertical bar in its middle column with serifs on the top and bottom rows.
        for y in 1...7 { XCTAssertTrue(image[3, y] == (0, 0, 0), "row \(y)") }
        XCTAssertTrue(image[1, 4] == (255, 255, 255))
        // Characters outside printable ASCII become a hollow box; drawing past the edge is clipped.
        var box = try RGBImage(width: 6, height: 8, fill: (255, 255, 255))
        BitmapFont.draw("é", into: &box, x: 0, y: 0, color: (0, 0, 0))
        XCTAssertTrue(box[0, 0] == (0, 0, 0) && box[4, 6] == (0, 0, 0) && box[2, 3] == (255, 255, 255))
        BitmapFont.draw("WWWW", into: &box, x: 3, y: 5, color: (9, 9, 9), scale: 3)
    }
}
