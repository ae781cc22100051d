import Distill
import DistillMPI
import Foundation

/// The processes of a distributed command. Started by `mpirun`, `teacher` and `train` initialise MPI on
/// first use and run as one rank of the job; started any other way, MPI is never initialised and every
/// command behaves as a single process.
///
/// Leaving: after success or an error every rank agreed on (``AgreedFailure``), MPI is finalised and
/// the process exits with its code; any other error on one rank may leave the others waiting in a
/// collective, so it aborts the whole job (`MPI_Abort`) after printing its line.
enum Ranks {
    nonisolated(unsafe) private static var mpi: MPICommunicator?

    /// This process's communicator: MPI's world when launched by mpirun, else ``SingleProcess``.
    static func communicator() throws -> Communicator {
        if let mpi { return mpi }
        guard MPICommunicator.isLaunched() else { return SingleProcess() }
        let world = try MPICommunicator()
        mpi = world
        if world.size > 1 { CLIFailure.context = "rank \(world.rank) of \(world.size): " }
        return world
    }

    /// Ends the process with `code` (see the type's comment).
    static func exit(_ code: Int32, after error: Error?) -> Never {
        if let mpi {
            if code != 0, let error, !(error is AgreedFailure), mpi.size > 1 { mpi.abort(code: code) }
            mpi.finalize()
        }
        Foundation.exit(code)
    }
}
