import Foundation

/// The processes (ranks) of one distributed run, as the teacher pass and the trainer need them: who am I,
/// how many are we, wait for everyone, sum buffers across ranks, copy rank 0's buffer to everyone.
///
/// Distill defines only this protocol and the one-process ``SingleProcess``; the MPI implementation lives
/// in its own target (`DistillMPI`), so that this library (and everything below it) never links an MPI
/// library. Every call is collective: each rank must make the same calls in the same order with the same
/// counts, from one thread at a time. Transport failures are fatal inside the implementation (MPI aborts
/// the job); input errors are agreed on with `agree(_:)` and thrown on every rank.
public protocol Communicator: AnyObject {
    /// This process's rank, 0..<``size``.
    var rank: Int { get }
    /// The number of ranks (processes) in the job.
    var size: Int { get }
    /// Element-wise sum over ranks, in place. Every rank gets bit-identical results (parameters updated
    /// from them must stay identical across ranks).
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>)
    /// Element-wise sum over ranks, in place, in double precision (bit-identical on every rank).
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Every rank's `values` become rank `root`'s.
    func broadcast(_ values: UnsafeMutableBufferPointer<Float>, root: Int)
}

/// One process: rank 0 of 1; every collective is a no-op.
public final class SingleProcess: Communicator {
    /// The one-process communicator.
    public init() {}
    /// Always 0.
    public var rank: Int { 0 }
    /// Always 1.
    public var size: Int { 1 }
    /// Leaves `values` as they are: the sum over one rank.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {}
    /// Leaves `values` as they are: the sum over one rank.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) {}
    /// Leaves `values` as they are: this rank is the root.
    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>, root: Int) {}
}

/// What one rank brings to an agreement point, and what all of them decided.
public struct RankStatus: Sendable, Equatable {
    /// This rank hit an error (it keeps it and throws it after the agreement).
    public var failed = false
    /// This rank was asked to stop (a signal).
    public var stopRequested = false
    /// This rank's status at an agreement point.
    public init(failed: Bool = false, stopRequested: Bool = false) {
        self.failed = failed
        self.stopRequested = stopRequested
    }
}

/// What all ranks decided at an agreement point: the same value on every rank.
public struct AgreedStatus: Sendable, Equatable {
    /// Ranks that failed, ascending.
    public var failedRanks: [Int]
    /// Some rank was asked to stop: all stop at the same point.
    public var stop: Bool
    /// Sum of the extra values each rank contributed.
    public var sums: [Double]
}

/// An error every rank of a run knows about (it was agreed at an agreement point): each rank can leave
/// cleanly — the rank that hit it with its own error, the others with `peerFailure(_:)`. An error that
/// escapes a distributed command without being agreed must abort the whole job instead, because the
/// other ranks may be waiting in a collective for this one.
public struct AgreedFailure: Error, CustomStringConvertible {
    /// This rank's own error, or a note that other ranks failed.
    public var underlying: Error
    /// Wraps `underlying`, an error every rank has agreed on.
    public init(underlying: Error) { self.underlying = underlying }
    /// The underlying error's description.
    public var description: String { String(describing: underlying) }
}

extension Communicator {
    /// An agreement point: every rank says whether it failed or wants to stop (and may add values to sum,
    /// e.g. a loss); everyone learns the union. One small allreduce.
    public func agree(_ status: RankStatus, sums: [Double] = []) -> AgreedStatus {
        if size == 1 {
            return AgreedStatus(failedRanks: status.failed ? [0] : [], stop: status.stopRequested, sums: sums)
        }
        // [failed flag per rank..., stop, sums...]: one vector, so one collective.
        var vector = [Double](repeating: 0, count: size + 1 + sums.count)
        if status.failed { vector[rank] = 1 }
        if status.stopRequested { vector[size] = 1 }
        for (i, value) in sums.enumerated() { vector[size + 1 + i] = value }
        vector.withUnsafeMutableBufferPointer { allreduceSum($0) }
        return AgreedStatus(failedRanks: (0..<size).filter { vector[$0] > 0 }, stop: vector[size] > 0,
                            sums: Array(vector[(size + 1)...]))
    }

    /// Runs `body` and agrees on its outcome: returns its result when every rank succeeded, else throws an
    /// ``AgreedFailure`` on every rank (this rank's own error where it failed). One process: `body` itself.
    public func agreeing<T>(_ what: String, _ body: () throws -> T) throws -> T {
        if size == 1 { return try body() }
        var result: Result<T, Error>
        do { result = .success(try body()) } catch { result = .failure(error) }
        var failed = false
        if case .failure = result { failed = true }
        let agreed = agree(RankStatus(failed: failed))
        switch result {
        case let .failure(error):
            throw AgreedFailure(underlying: error)
        case let .success(value):
            if !agreed.failedRanks.isEmpty { throw AgreedFailure(underlying: peerFailure(agreed.failedRanks, during: what)) }
            return value
        }
    }

    /// The error a rank that did not fail reports when others did.
    public func peerFailure(_ ranks: [Int], during what: String) -> DistillError {
        DistillError(.peerFailed, "rank\(ranks.count > 1 ? "s" : "") \(ranks.map(String.init).joined(separator: ", ")) of \(size) failed during \(what) (see its error); rank \(rank) stopped too")
    }

    /// Whether every rank holds the same bytes (a fingerprint compared through one allreduce): for
    /// parameters, which must stay identical across ranks, and for options, which must agree.
    public func allAgree(on fingerprint: UInt64) -> Bool {
        if size == 1 { return true }
        // Sum of the fingerprint's four 16-bit parts and of their squares: equal on all ranks iff the sums
        // are size·part and size·part² for each part (exact in double: parts < 2^16, sizes < 2^20).
        var vector = [Double](repeating: 0, count: 8)
        for i in 0..<4 {
            let part = Double((fingerprint >> (16 * UInt64(i))) & 0xFFFF)
            vector[i] = part
            vector[4 + i] = part * part
        }
        let mine = vector
        vector.withUnsafeMutableBufferPointer { allreduceSum($0) }
        let n = Double(size)
        return (0..<4).allSatisfy { vector[$0] == n * mine[$0] && vector[4 + $0] == n * mine[4 + $0] }
    }
}

/// FNV-1a over 8-byte words (then the tail bytes), for ``Communicator/allAgree(on:)``: not a
/// cryptographic hash, a cheap check that ranks hold the same bytes (20 MB of weights in a few ms).
public struct Fingerprint {
    /// The 64-bit hash so far (FNV-1a's offset basis before anything is added).
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    /// An empty fingerprint.
    public init() {}
    /// Adds `bytes`, 8 at a time with the tail byte by byte; the order of the calls matters.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        let words = bytes.count / 8
        for i in 0..<words { h = (h ^ bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) &* 0x0000_0100_0000_01B3 }
        for b in bytes[(8 * words)...] { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }
    /// Adds the UTF-8 bytes of `text`.
    public mutating func add(_ text: String) { var t = text; t.withUTF8 { add(UnsafeRawBufferPointer($0)) } }
}

/// The outcome of an agreement point that also carries stop requests: the body's result agreed across
/// ranks, and whether any rank was asked to stop there.
public struct AgreedStep: Sendable {
    let failure: AgreedFailureBox?
    /// Some rank was asked to stop: every rank stops after this step.
    public let stopped: Bool
    /// Throws the agreed failure, if any.
    public func get() throws { if let failure { throw failure.error } }
}

struct AgreedFailureBox: @unchecked Sendable { let error: Error }

extension Communicator {
    /// Runs `body` (a step) and agrees on its outcome and on stop requests in one allreduce: every rank
    /// learns that one failed (``AgreedStep/get()`` throws an ``AgreedFailure``) or that one was asked to stop
    /// (``AgreedStep/stopped``), so that all ranks stop after the same step.
    public func agreeingWithStop(_ what: String, stop: StopRequest?, _ body: () throws -> Void) -> AgreedStep {
        var error: Error?
        do { try body() } catch let caught { error = caught }
        let agreed = agree(RankStatus(failed: error != nil, stopRequested: stop?.isRequested ?? false))
        if let error { return AgreedStep(failure: AgreedFailureBox(error: size == 1 ? error : AgreedFailure(underlying: error)), stopped: agreed.stop) }
        if !agreed.failedRanks.isEmpty {
            return AgreedStep(failure: AgreedFailureBox(error: AgreedFailure(underlying: peerFailure(agreed.failedRanks, during: what))),
                              stopped: agreed.stop)
        }
        return AgreedStep(failure: nil, stopped: agreed.stop)
    }
}
