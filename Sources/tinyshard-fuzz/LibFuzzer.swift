#if LIBFUZZER
import Foundation

// libFuzzer's entry points (compiler-rt, linked by -sanitize=fuzzer): the driver runs coverage-guided
// fuzzing with our callback; the custom mutator lets half of the mutations be structure-aware and
// re-seals checksums after libFuzzer's own byte mutations.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

nonisolated(unsafe) var activeTarget = FuzzTarget.shard

@_cdecl("LLVMFuzzerCustomMutator")
public func tinyshardCustomMutator(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var random = FuzzRandom(seed: UInt64(seed) | 1 << 40)
    var bytes: [UInt8]
    if random.chance(50) {
        bytes = activeTarget.mutate(Array(UnsafeBufferPointer(start: data, count: size)), &random)
    } else {
        let produced = LLVMFuzzerMutate(data, size, maxSize)
        bytes = activeTarget.reseal(Array(UnsafeBufferPointer(start: data, count: produced)))
    }
    if bytes.count > maxSize { bytes.removeLast(bytes.count - maxSize) }
    bytes.withUnsafeBufferPointer { if let base = $0.baseAddress { data.update(from: base, count: $0.count) } }
    return bytes.count
}

enum LibFuzzer {
    static func run(_ target: FuzzTarget, arguments: [String]) -> Never {
        activeTarget = target
        var cArguments = ([CommandLine.arguments[0]] + arguments).map { strdup($0) }
        cArguments.append(nil)
        var argc = Int32(cArguments.count - 1)
        let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var argv = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
                activeTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
                return 0
            }
        }
        Scratch.clean()
        exit(status)
    }
}
#endif
