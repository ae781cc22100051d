/// What an importer wrote: counts for a person and for tests.
public struct ImportSummary: Sendable, Equatable {
    public var images: Int
    public var classNames: [String]
    /// Images per label (index = label).
    public var labelHistogram: [Int]
    /// Size of the finished store file.
    public var bytes: Int
}

extension ImportSummary {
    init(labels: [Int], classNames: [String], classCount: Int, bytes: Int) {
        var histogram = [Int](repeating: 0, count: classCount)
        for label in labels where label >= 0 { histogram[label] += 1 }
        self.init(images: labels.count, classNames: classNames, labelHistogram: histogram, bytes: bytes)
    }
}
