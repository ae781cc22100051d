import Foundation
import Tensor
import TinyViT

/// The gradient of one optimiser step over several micro-batches and ranks: each backward overwrites the
/// parameters' gradients, so after every micro-batch they are added into flat buckets (contiguous float
/// buffers of about `bucketBytes`, parameters in model order, as DDP's buckets); the buckets are summed
/// over ranks (one allreduce per bucket instead of one per parameter tensor), scaled by 1 / (ranks ×
/// micro-batches) — the mean over the global batch, since each micro-batch's loss is its own mean — and
/// written back as the gradients the optimiser clips and applies once.
///
/// The sum runs in micro-batch order on one process (g0 + g1 + …) and in the MPI library's order across
/// ranks; for two parts both are the single addition g0 + g1, so `mpirun -np 2` and `--accumulate 2`
/// give bit-identical gradients when their micro-batches' gradients are bit-identical.
final class GradientBuckets {
    /// 4 MiB of floats: ~5 buckets for the 5M model; per-call latency is then negligible (measured by
    /// `Tools/bench_mpi.py` as the allreduce share).
    static let defaultBucketBytes = 4 << 20

    private struct Slice {
        let parameter: Parameter
        let offset: Int
        let count: Int
    }

    private let buckets: [(storage: UnsafeMutableBufferPointer<Float>, slices: [Slice])]

    init(parameters: [Parameter], bucketBytes: Int = GradientBuckets.defaultBucketBytes) {
        let capacity = max(1, bucketBytes / MemoryLayout<Float>.stride)
        var buckets: [(UnsafeMutableBufferPointer<Float>, [Slice])] = []
        var slices: [Slice] = []
        var used = 0
        func close() {
            guard used > 0 else { return }
            let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: used)
            storage.initialize(repeating: 0)
            buckets.append((storage, slices))
            slices = []
            used = 0
        }
        for p in parameters {
            let n = p.gradient.count
            if used > 0, used + n > capacity { close() }
            slices.append(Slice(parameter: p, offset: used, count: n))
            used += n
        }
        close()
        self.buckets = buckets
    }

    deinit { for bucket in buckets { bucket.storage.deallocate() } }

    var count: Int { buckets.count }
    var floats: Int { buckets.reduce(0) { $0 + $1.storage.count } }

    /// Adds the parameters' current gradients into the buckets (copies them for the first micro-batch).
    func accumulate(first: Bool) {
        for bucket in buckets {
            for slice in bucket.slices {
                let g = slice.parameter.gradient.pointer
                let out = bucket.storage.baseAddress! + slice.offset
                let n = slice.count
                if first {
                    out.update(from: g, count: n)
                } else {
                    Parallel.forRanges(n, grain: 65536) { r in for i in r { out[i] += g[i] } }
                }
            }
        }
    }

    /// Sums every bucket over the ranks of `communicator` (skipped for one process).
    func allreduce(_ communicator: Communicator) {
        guard communicator.size > 1 else { return }
        for bucket in buckets { communicator.allreduceSum(bucket.storage) }
    }

    /// Writes `scale` × the buckets back into the parameters' gradients.
    func writeBack(scale: Float) {
        for bucket in buckets {
            for slice in bucket.slices {
                let g = slice.parameter.gradient.pointer
                let src = bucket.storage.baseAddress! + slice.offset
                if scale == 1 {
                    g.update(from: src, count: slice.count)
                } else {
                    Parallel.forRanges(slice.count, grain: 65536) { r in for i in r { g[i] = src[i] * scale } }
                }
            }
        }
    }
}
