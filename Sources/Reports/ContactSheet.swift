import Distill
import Augment
import Foundation

/// A grid of rendered records, each captioned with its key and top classes: a glance at what the
/// teacher saw and said for many records at once.
public enum ContactSheet {
    /// The sheet's background colour (RGB), white.
    public static let background: (UInt8, UInt8, UInt8) = (255, 255, 255)
    /// The captions' colour (RGB), near black.
    public static let ink: (UInt8, UInt8, UInt8) = (20, 20, 20)
    /// Pixels between cells and around the sheet.
    public static let padding = 6

    /// Lays `records` out in `columns` columns (0: about a square grid). Views smaller than 96 pixels are
    /// enlarged by an integer factor (nearest neighbour) so small images stay visible. Each caption is
    /// the key, then `top` lines "class value", with `classNames[class]` when the store names classes.
    public static func draw(_ records: [RenderedRecord], columns: Int = 0, top: Int = 3,
                            classNames: [String] = []) throws -> RGBImage {
        guard let first = records.first else { throw DistillError(.invalidArgument, "a contact sheet needs at least one record") }
        let side = max(first.image.width, first.image.height)
        let zoom = max(1, 96 / side)
        let imageWidth = first.image.width * zoom, imageHeight = first.image.height * zoom
        let columns = columns > 0 ? columns : Int(Double(records.count).squareRoot().rounded(.up))
        let rows = (records.count + columns - 1) / columns
        let cellWidth = max(imageWidth, 14 * BitmapFont.advance) + padding
        let captionHeight = (1 + top) * BitmapFont.lineHeight
        let cellHeight = imageHeight + 3 + captionHeight + padding
        var sheet = try RGBImage(width: columns * cellWidth + padding, height: rows * cellHeight + padding, fill: background)
        for (n, record) in records.enumerated() {
            guard record.image.width * zoom == imageWidth, record.image.height * zoom == imageHeight else {
                throw DistillError(.invalidArgument, "record \(record.ordinal) is \(record.image.width)x\(record.image.height), the sheet's views are \(first.image.width)x\(first.image.height)")
            }
            let x0 = padding + (n % columns) * cellWidth, y0 = padding + (n / columns) * cellHeight
            blit(record.image, zoom: zoom, into: &sheet, x: x0, y: y0)
            let textWidth = cellWidth - padding
            var y = y0 + imageHeight + 3
            BitmapFont.draw(BitmapFont.fitted(record.key, pixels: textWidth), into: &sheet, x: x0, y: y, color: ink)
            for entry in record.entries.prefix(top) {
                y += BitmapFont.lineHeight
                let name = entry.classIndex < classNames.count ? classNames[entry.classIndex] : String(entry.classIndex)
                let value = String(format: " %.3f", entry.value)
                let label = BitmapFont.fitted(name, pixels: textWidth - BitmapFont.width(value) - BitmapFont.advance) + value
                BitmapFont.draw(label, into: &sheet, x: x0, y: y, color: ink)
            }
        }
        return sheet
    }

    private static func blit(_ image: RGBImage, zoom: Int, into sheet: inout RGBImage, x: Int, y: Int) {
        let sheetWidth = sheet.width
        image.pixels.withUnsafeBufferPointer { src in
            sheet.pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<(image.height * zoom) {
                    for column in 0..<(image.width * zoom) {
                        let from = ((row / zoom) * image.width + column / zoom) * 3
                        let to = ((y + row) * sheetWidth + x + column) * 3
                        dst[to] = src[from]
                        dst[to + 1] = src[from + 1]
                        dst[to + 2] = src[from + 2]
                    }
                }
            }
        }
    }
}
