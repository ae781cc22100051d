import CDNNL
import Foundation

/// Row-major single-precision GEMM on oneDNN's JIT kernels (`dnnl_sgemm`, threaded by oneDNN's
/// OpenMP team; small products called from Swift kernel workers run on the calling thread):
/// `C[m×n] = alpha · op(A) · op(B) + beta · C`, where `op(X)` is `X` or `Xᵀ`.
///
/// Every matrix product of the model goes through here: Linear and 1×1 convolutions (one GEMM
/// over all `N·H·W` rows), the im2col 3×3 convolutions and the per-window attention products.
public enum Gemm {
    /// `C = alpha · op(A) · op(B) + beta · C` on row-major matrices with leading dimensions `lda`, `ldb`, `ldc`; with k
    /// = 0, `C = beta · C`.
    @inline(__always)
    public static func run(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                           alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                           b: UnsafePointer<Float>, ldb: Int,
                           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // oneDNN rejects K = 0; the product is empty, so C = beta · C.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let status = dnnl_sgemm(transA ? 84 : 78, transB ? 84 : 78, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k),
                                alpha, a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm(\(m), \(n), \(k)) failed: \(status.rawValue)")
    }
}
