import DistillTestSupport
import Foundation
import ShardFormat
import XCTest
@testable import Distill

/// K chosen after the pass (Spec/FORMAT.md 7, "the top k of a record"): the dense rows of the first k entries of
/// a K = 5 pass are bit for bit those of a pass stored with K = k, for every k; and k outside 1...K is refused.
final class TopKAfterThePassTests: XCTestCase {
    func testTheTopKOfAPassIsThePassWithThatK() throws {
        let dir = try Fixture.temporaryDirectory("topk")
        let store = try Fixture.store(count: 30, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/k5", epochs: 1, k: 5)
        let five = try ShardDataset(directory: dir + "/k5").shards[0]
        let classes = five.schema.classes
        for k in 1...5 {
            _ = try Fixture.teacherPass(store: store, directory: dir + "/direct\(k)", epochs: 1, k: k)
            let stored = try ShardDataset(directory: dir + "/direct\(k)").shards[0]
            XCTAssertEqual(stored.recordCount, five.recordCount)
            var truncated = [Float](repeating: 0, count: five.recordCount * classes)
            var direct = truncated
            try truncated.withUnsafeMutableBufferPointer { try five.makeCursor().dense(0..<five.recordCount, into: $0, top: k) }
            try direct.withUnsafeMutableBufferPointer { try stored.makeCursor().dense(0..<stored.recordCount, into: $0) }
            XCTAssertEqual(truncated.map(\.bitPattern), direct.map(\.bitPattern), "k = \(k)")
        }
        var row = [Float](repeating: 0, count: classes)
        for k in [0, 6] {
            let error = shardError(try row.withUnsafeMutableBufferPointer { try five.makeCursor().dense([0], into: $0, top: k) })
            XCTAssertEqual(error?.code, .invalidArgument, "k = \(k)")
        }
    }
}

/// The ShardError a throwing call raised, or nil.
func shardError<T>(_ body: @autoclosure () throws -> T) -> ShardError? {
    do { _ = try body() } catch let error as ShardError { return error } catch { return nil }
    return nil
}
