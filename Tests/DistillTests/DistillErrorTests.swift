import Distill
import XCTest

final class DistillErrorTests: XCTestCase {
    func testDescriptionPrintsTheCodeOnceAfterThePlace() {
        XCTAssertEqual("\(DistillError(.io, "mine"))", "[io] mine")
        XCTAssertEqual("\(DistillError(.mismatch, "other classes", file: "a/b"))", "a/b: [mismatch] other classes")
        XCTAssertEqual("\(DistillError(.invalidArgument, "no image", file: "s.tshard", item: "record 3"))",
                       "s.tshard: record 3: [invalid-argument] no image")
        XCTAssertEqual(DistillError(.noLabel, "x").code.rawValue, "no_label")
    }

    func testEveryCodeHasOneSpelling() {
        let spellings = DistillErrorCode.allCases.map(\.rawValue)
        XCTAssertEqual(Set(spellings).count, spellings.count)
        XCTAssertEqual(DistillErrorCode(rawValue: "invalid-argument"), .invalidArgument)
        XCTAssertNil(DistillErrorCode(rawValue: "invalid_argument"))
    }
}
