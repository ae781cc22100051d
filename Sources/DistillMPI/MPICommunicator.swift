import CMPI
import Distill
import Foundation

/// Distill's `Communicator` over MPI (Open MPI's `MPI_COMM_WORLD`), for processes started by `mpirun`.
///
/// This target is the only one that links libmpi; the libraries (ShardFormat … Distill) stay free of it.
/// MPI is initialised with `MPI_THREAD_SERIALIZED` (the trainer calls it from its own thread while batch
/// preparation runs on another that never calls MPI). Transport errors keep MPI's default handler
/// (`MPI_ERRORS_ARE_FATAL`: the whole job aborts), so the collectives do not throw.
public final class MPICommunicator: Communicator {
    /// This process's rank in `MPI_COMM_WORLD`.
    public let rank: Int
    /// The number of processes in `MPI_COMM_WORLD`.
    public let size: Int
    private var finalized = false

    /// Whether this process was started by an MPI launcher. Checked in the environment *before* MPI is
    /// initialised (a singleton MPI_Init sets such variables itself): Open MPI's mpirun sets
    /// `OMPI_COMM_WORLD_SIZE`, PMIx launchers (mpirun, srun) `PMIX_RANK`, older PMI ones `PMI_RANK`.
    public static func isLaunched(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil || environment["PMI_RANK"] != nil
    }

    /// Initialises MPI. Call once per process, only when ``isLaunched(environment:)``.
    public init() throws {
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, tinyshard_mpi_thread_serialized(), &provided)
        guard status == tinyshard_mpi_success() else { throw DistillError(.mpi, "MPI_Init_thread failed (error \(status))") }
        guard provided >= tinyshard_mpi_thread_serialized() else {
            MPI_Finalize()
            throw DistillError(.mpi, "the MPI library gives thread level \(provided); TinyShard needs MPI_THREAD_SERIALIZED")
        }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(tinyshard_mpi_comm_world(), &r)
        MPI_Comm_size(tinyshard_mpi_comm_world(), &s)
        rank = Int(r)
        size = Int(s)
    }

    /// MPI counts are 32-bit: larger buffers go in chunks.
    private static let chunk = 1 << 30

    /// `MPI_Allreduce` with `MPI_SUM`, in place, in chunks of at most 2^30 elements.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        forChunks(values.count) { start, count in
            _ = MPI_Allreduce(tinyshard_mpi_in_place(), values.baseAddress! + start, Int32(count), tinyshard_mpi_float(),
                              tinyshard_mpi_sum(), tinyshard_mpi_comm_world())
        }
    }

    /// `MPI_Allreduce` with `MPI_SUM` on doubles, in place, in chunks of at most 2^30 elements.
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) {
        forChunks(values.count) { start, count in
            _ = MPI_Allreduce(tinyshard_mpi_in_place(), values.baseAddress! + start, Int32(count), tinyshard_mpi_double(),
                              tinyshard_mpi_sum(), tinyshard_mpi_comm_world())
        }
    }

    /// `MPI_Bcast` from `root`, in chunks of at most 2^30 elements.
    public func broadcast(_ values: UnsafeMutableBufferPointer<Float>, root: Int) {
        forChunks(values.count) { start, count in
            _ = MPI_Bcast(values.baseAddress! + start, Int32(count), tinyshard_mpi_float(), Int32(root), tinyshard_mpi_comm_world())
        }
    }

    private func forChunks(_ count: Int, _ body: (Int, Int) -> Void) {
        var start = 0
        while start < count {
            let n = min(Self.chunk, count - start)
            body(start, n)
            start += n
        }
    }

    /// Ends MPI after every rank called it (a clean exit, also after an agreed failure).
    public func finalize() {
        guard !finalized else { return }
        finalized = true
        MPI_Finalize()
    }

    /// Ends every process of the job with `code` (for an error the other ranks do not know about, while
    /// they may be waiting in a collective for this one).
    public func abort(code: Int32) -> Never {
        MPI_Abort(tinyshard_mpi_comm_world(), code)
        exit(code)
    }
}
