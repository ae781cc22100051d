import Foundation

// # Tensor
//
// A small float32 tensor layer for CPU training: `Tensor` (shape + pooled contiguous storage) and
// the ops TinyViT needs, each a forward/backward pair on channels-last data (llm.c style, explicit
// saved state, gradients overwritten rather than accumulated):
// - `Gemm` (oneDNN `dnnl_sgemm`), `Linear` (also the 1×1 convolution), `Conv2d` (im2col + GEMM),
//   `DepthwiseConv` (C SIMD kernel, any stride/kernel), `BatchNorm` (train/eval, fused residual + drop path +
//   GELU), `LayerNorm`, `GELU` (erf form), `WindowAttention` (windowed multi-head attention with
//   LeViT biases and timm's zero padding), `WindowPartition`, `GlobalAveragePool`,
//   `SoftTargetCrossEntropy`, `DropPath`, `Elementwise`, `Layout` (NCHW ↔ NHWC).
// - `SafeTensors` and `NPY` readers/writers.
// - `Parallel` (the Swift kernels' threading) and `OpProfiler` (per-op timing for benchmarks).
// Each op has a finite-difference gradient check in Tests/TensorTests.

/// A dense, contiguous, row-major float32 tensor.
///
/// `Tensor` is a small value that *refers* to its storage: copying a `Tensor` shares the
/// elements (like a class reference), which is what the layers want for saved activations.
/// Use ``copy()`` for an independent copy. Storage comes from ``BufferPool`` and returns to it
/// when the last `Tensor` referring to it goes away, so steady-state training allocates nothing.
public struct Tensor: @unchecked Sendable {
    /// The extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// The reference-counted element storage.
    public let storage: TensorStorage

    /// Number of elements (product of `shape`).
    public var count: Int { shape.reduce(1, *) }
    /// Pointer to the first element; valid while this tensor (or another sharing its storage) lives.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// A tensor of the given shape whose elements are zero.
    public init(zeros shape: [Int]) {
        self.init(uninitialized: shape)
        pointer.initialize(repeating: 0, count: count)
    }

    /// A tensor of the given shape with unspecified contents (fastest; every element must be
    /// written before it is read).
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    /// A tensor holding `values` (row-major) with the given shape.
    /// - Throws: ``TensorError/shapeMismatch(_:)`` when `values.count` does not match `shape`.
    public init(shape: [Int], values: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw TensorError.shapeMismatch("\(values.count) values do not fill shape \(shape)")
        }
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        pointer.initialize(repeating: value, count: count)
    }

    /// The same elements seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// An independent copy of the elements.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// The elements as an array (row-major).
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Read-only view of the elements.
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
    /// Mutable view of the elements.
    public var mutableBuffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// Sets every element to zero.
    public func zero() { pointer.update(repeating: 0, count: count) }

    /// Copies the elements of `other` (same element count) into this tensor.
    public func assign(from other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    /// Element access by flat index (slow path for tests and small tensors).
    public subscript(flat index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }

    /// Largest absolute value of the elements (0 for an empty tensor).
    public func maxAbs() -> Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(pointer[i])) }
        return m
    }
}

/// Errors raised by tensor construction and tensor files.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// Shapes that do not fit together.
    case shapeMismatch(String)
    /// A tensor file that cannot be read or is damaged.
    case invalidFile(String)
    /// A tensor asked for by name is absent.
    case missingKey(String)
    /// A dtype or layout this library does not handle.
    case unsupported(String)

    /// One line: the kind of failure and its sentence.
    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .invalidFile(let s): return "invalid file: \(s)"
        case .missingKey(let s): return "missing key: \(s)"
        case .unsupported(let s): return "unsupported: \(s)"
        }
    }
}

/// Reference-counted, 64-byte aligned float storage taken from and returned to ``BufferPool``.
public final class TensorStorage: @unchecked Sendable {
    /// The 64-byte aligned floats.
    public let pointer: UnsafeMutablePointer<Float>
    /// The floats allocated (at least the tensor's count).
    public let capacity: Int

    init(count: Int) {
        capacity = count
        pointer = BufferPool.shared.take(count)
    }

    deinit { BufferPool.shared.recycle(pointer, count: capacity) }
}

/// A free list of float buffers keyed by exact element count.
///
/// Training repeats the same sequence of shapes every step, so after the first step every
/// request is served from the list: no page faults, no allocator calls. ``purge()`` returns the
/// cached buffers to the system (e.g. after changing batch size or resolution).
public final class BufferPool: @unchecked Sendable {
    /// The process-wide pool every tensor allocates from.
    public static let shared = BufferPool()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private let lock = NSLock()

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        if var list = free[count], let p = list.popLast() {
            free[count] = list
            cachedBytes -= count * 4
            lock.unlock()
            return p
        }
        lock.unlock()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func recycle(_ p: UnsafeMutablePointer<Float>, count: Int) {
        lock.lock()
        free[count, default: []].append(p)
        cachedBytes += count * 4
        lock.unlock()
    }

    /// Bytes currently held in the free list.
    public var cachedByteCount: Int { lock.lock(); defer { lock.unlock() }; return cachedBytes }

    /// Releases every cached buffer to the system allocator.
    public func purge() {
        lock.lock()
        for (_, list) in free { for p in list { UnsafeMutableRawPointer(p).deallocate() } }
        free = [:]
        cachedBytes = 0
        lock.unlock()
    }
}
