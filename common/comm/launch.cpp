// launch.cpp: who launched this process, from the environment (comm.h DetectLaunch).
#include <cstdlib>
#include <cstring>

#include "comm/comm.h"

namespace lm {

namespace {

// An environment variable as an integer in [lo, hi]: *found false when unset.
Status EnvInt(const char* name, int lo, int hi, int* v, bool* found) {
  const char* s = getenv(name);
  *found = s && *s;
  if (!*found) return Status::OK();
  char* end = nullptr;
  long x = strtol(s, &end, 10);
  if (*end || x < lo || x > hi)
    return Status::Usage(std::string("environment: ") + name + "='" + s +
                         "' is not a whole number from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
  *v = (int)x;
  return Status::OK();
}

// One launcher's variables: rank, size, and (optional) local rank and size.
struct Scheme {
  const char* launcher;
  const char *rank, *size, *local_rank, *local_size;
};

}  // namespace

Status DetectLaunch(LaunchInfo* out) {
  *out = LaunchInfo();
  // In this order: an MPI launcher's own variables first (srun under mpirun
  // or a torchrun wrapper inside an MPI job would otherwise be misread).
  static const Scheme kSchemes[] = {
      {"mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
       "OMPI_COMM_WORLD_LOCAL_SIZE"},
      {"mpi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
      {"mpi", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", nullptr},
      {"env", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
  };
  for (const Scheme& s : kSchemes) {
    int size = 1, rank = 0;
    bool has_size = false, has_rank = false, f = false;
    LM_RETURN_IF_ERROR(EnvInt(s.size, 1, 1 << 24, &size, &has_size));
    if (!has_size) continue;
    LM_RETURN_IF_ERROR(EnvInt(s.rank, 0, size - 1, &rank, &has_rank));
    if (!has_rank)
      return Status::Usage(std::string("environment: ") + s.size + " is set but " + s.rank +
                           " is not");
    // mpirun -np 1 is still MPI (the collectives run, over one rank);
    // RANK/WORLD_SIZE of one is a plain process.
    out->launcher = size > 1 || std::string(s.launcher) == "mpi" ? s.launcher : "none";
    out->rank = rank;
    out->size = size;
    out->source = std::string(s.rank) + "/" + s.size;
    out->local_rank = rank;  // one machine, unless the launcher says otherwise
    out->local_size = size;
    LM_RETURN_IF_ERROR(EnvInt(s.local_rank, 0, size - 1, &out->local_rank, &f));
    if (s.local_size) LM_RETURN_IF_ERROR(EnvInt(s.local_size, 1, size, &out->local_size, &f));
    return Status::OK();
  }
  return Status::OK();
}

}  // namespace lm
