import Distill
import Foundation
import TinyShardBase
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT / SIGTERM (and under mpirun SIGUSR1, which mpirun forwards to every rank) → a stop request: the
/// default action (exit at once) is replaced by finishing the step and writing a checkpoint; a second signal
/// exits at once.
final class SignalStop: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var signal: Int32?
    var received: Int32? { lock.lock(); defer { lock.unlock() }; return signal }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(signal)"
        }
    }

    init(_ stop: StopRequest, alsoOn extra: [Int32] = []) {
        for number in [SIGINT, SIGTERM] + extra {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let repeated = self.signal != nil
                self.signal = number
                self.lock.unlock()
                // A second signal means "now": exit without waiting for the step or the checkpoint.
                if repeated {
                    StandardError.write("\ntinyshard: second signal, exiting without a checkpoint\n")
                    Foundation.exit(128 + number)
                }
                stop.request()
            }
            source.resume()
            sources.append(source)
        }
    }
}
