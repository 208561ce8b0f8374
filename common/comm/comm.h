// comm.h: making the collectives (backend/comm.h) for the way this process
// was launched. One process (no launcher): "none", whose calls do nothing.
// mpirun, or srun under Slurm: MPI, for host memory. Either, with the CUDA
// backend: NCCL for the gradients and weights, its unique id sent by MPI.
// A torchrun-style environment (RANK, WORLD_SIZE, LOCAL_RANK) without MPI:
// NCCL for everything, its id from a shared file or NCCL's own bootstrap
// address (StartNccl). Launch, transport and rendezvous are MPI's and NCCL's;
// nothing here listens on a socket.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "backend/comm.h"
#include "util/status.h"

namespace lm {

struct LaunchInfo {
  std::string launcher = "none";  // "none", "mpi" (mpirun, srun) or "env" (RANK, WORLD_SIZE)
  int rank = 0, size = 1;
  int local_rank = 0;  // among the ranks on this machine: the GPU this rank takes
  int local_size = 1;
  std::string source;  // the variables it was read from, for messages
};

// Reads the launcher's environment: Open MPI's OMPI_COMM_WORLD_*, PMI_*
// (MPICH, srun --mpi=pmi2), SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID (srun),
// or RANK/WORLD_SIZE/LOCAL_RANK. Malformed values are a usage error.
Status DetectLaunch(LaunchInfo* out);

// What a collective that waits too long does.
struct CommOptions {
  // Seconds a blocking collective may wait for the other ranks before the
  // watchdog calls on_timeout (<= 0: never).
  double timeout_seconds = 600;
  // Called on the watchdog's thread with what was waiting ("all-reduce"); it
  // must end the process (the tool prints and exits: common/ does neither).
  std::function<void(const std::string& what, double seconds)> on_timeout;
};

// True when this build has MPI (LM_HAVE_MPI) or NCCL (the CUDA build with nccl.h).
bool HaveMpi();
bool HaveNccl();

// The host collectives for `launch`: none without a launcher; MPI
// (initialised here, finalised with the object) for an MPI launch, even of
// one rank. An "env" launch has none (it is NCCL's: StartNccl with no
// bootstrap). Errors
// say what to install or how to launch. `launch` gets local_rank/local_size
// from MPI when the launcher's variables lack them.
Status StartHostComm(LaunchInfo* launch, const CommOptions& opt, std::unique_ptr<Comm>* out);

// NCCL over the ranks of `launch` on CUDA device `device` (made current),
// with its own stream. The unique id comes from `bootstrap`'s rank 0 (the
// MPI communicator) or, with none, from the file named by LM_NCCL_ID_FILE
// (rank 0 writes it, the others wait for it up to the timeout) or from
// NCCL_COMM_ID=host:port (MASTER_ADDR:MASTER_PORT when only those are set),
// where NCCL's rank 0 listens.
Status StartNccl(const LaunchInfo& launch, int device, Comm* bootstrap, const CommOptions& opt,
                 std::unique_ptr<Comm>* out);

}  // namespace lm
