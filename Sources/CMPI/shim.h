// Open MPI (Debian libopenmpi-dev) for Swift. MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE, MPI_SUM and
// MPI_IN_PLACE are macros over addresses of extern structs, which Swift cannot import: these inline
// functions hand them over as values. Only the calls DistillMPI makes are wrapped.
#include <mpi.h>

static inline MPI_Comm tinyshard_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype tinyshard_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype tinyshard_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op tinyshard_mpi_sum(void) { return MPI_SUM; }
static inline void *tinyshard_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int tinyshard_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int tinyshard_mpi_success(void) { return MPI_SUCCESS; }
