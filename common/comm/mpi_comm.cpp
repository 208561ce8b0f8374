// mpi_comm.cpp: the collectives over MPI on host memory (backend/comm.h):
// the CPU backend's gradients and weights, and the control messages of every
// run that mpirun or srun launched. Errors come back as Status
// (MPI_ERRORS_RETURN) instead of aborting inside MPI; the watchdog bounds a
// wait for a rank that stopped answering. MPI counts are int, so large
// buffers go in chunks.
#ifdef LM_HAVE_MPI
// The C API only: no C++ bindings to link (Open MPI, MPICH).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "comm/comm.h"
#include "comm/watchdog.h"

namespace lm {
namespace comm {

namespace {

constexpr size_t kChunkBytes = 1u << 30;  // below INT_MAX, in bytes or floats

Status MpiError(const char* what, int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return Status::IOError(std::string("mpi: ") + what + ": " + std::string(msg, (size_t)len) +
                         " (another rank has probably died)");
}
#define LM_MPI(what, call)                              \
  do {                                                  \
    int rc_ = (call);                                   \
    if (rc_ != MPI_SUCCESS) return MpiError(what, rc_); \
  } while (0)

// The parts of [lo, hi) that each rank owns, as (rank, begin, count).
template <class F>
Status ForOwners(size_t lo, size_t hi, const ParamShards& s, F f) {
  for (int r = 0; r < s.ranks(); r++) {
    const auto [a, b] = s.Part(r, lo, hi);
    for (size_t o = a; o < b; o += kChunkBytes / 4)
      LM_RETURN_IF_ERROR(f(r, o, (int)std::min(b - o, kChunkBytes / 4)));
  }
  return Status::OK();
}

class MpiComm : public Comm {
 public:
  MpiComm(int rank, int size, std::string version, const CommOptions& opt)
      : rank_(rank), size_(size), version_(std::move(version)), dog_(opt) {}
  ~MpiComm() override {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string Describe() const override {
    return "mpi (" + version_ + ", " + std::to_string(size_) + " ranks)";
  }
  bool on_device() const override { return false; }

  Status AllReduce(double* x, int n, ReduceOp op) override {
    Watch w(&dog_, "all-reduce");
    LM_MPI("all-reduce", MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE,
                                       op == ReduceOp::kSum ? MPI_SUM : MPI_MAX, MPI_COMM_WORLD));
    return Status::OK();
  }

  Status Broadcast(void* buf, size_t bytes, int root) override {
    Watch w(&dog_, "broadcast");
    for (size_t o = 0; o < bytes; o += kChunkBytes)
      LM_MPI("broadcast", MPI_Bcast((char*)buf + o, (int)std::min(bytes - o, kChunkBytes), MPI_BYTE,
                                    root, MPI_COMM_WORLD));
    return Status::OK();
  }

  Status Gather(const void* send, const std::vector<size_t>& bytes, void* recv, int root) override {
    return Exchange(const_cast<void*>(send), bytes, recv, root, /*to_root=*/true);
  }
  Status Scatter(const void* send, const std::vector<size_t>& bytes, void* recv,
                 int root) override {
    return Exchange(const_cast<void*>(send), bytes, recv, root, /*to_root=*/false);
  }

  Status ReduceToOwners(float* buf, size_t lo, size_t hi, const ParamShards& s, void*) override {
    Watch w(&dog_, "reduce");
    return ForOwners(lo, hi, s, [&](int r, size_t o, int n) {
      LM_MPI("reduce", MPI_Reduce(r == rank_ ? MPI_IN_PLACE : buf + o, buf + o, n, MPI_FLOAT,
                                  MPI_SUM, r, MPI_COMM_WORLD));
      return Status::OK();
    });
  }
  Status GatherFromOwners(float* buf, size_t lo, size_t hi, const ParamShards& s, void*) override {
    Watch w(&dog_, "all-gather");
    return ForOwners(lo, hi, s, [&](int r, size_t o, int n) {
      LM_MPI("all-gather", MPI_Bcast(buf + o, n, MPI_FLOAT, r, MPI_COMM_WORLD));
      return Status::OK();
    });
  }
  Status SumDoubles(double* x, int n, void*) override { return AllReduce(x, n, ReduceOp::kSum); }
  Status Join(void*) override { return Status::OK(); }

  [[noreturn]] void Abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);
  }

 private:
  // Gather (to_root) or Scatter: rank r's bytes[r] bytes between its buf and
  // root's, at the sum of the earlier ranks' sizes; point to point, in chunks.
  Status Exchange(void* mine, const std::vector<size_t>& bytes, void* roots, int root,
                  bool to_root) {
    Watch w(&dog_, to_root ? "gather" : "scatter");
    if ((int)bytes.size() != size_) return Status::Invalid("mpi: gather/scatter: sizes per rank");
    size_t at = 0;
    for (int r = 0; r < size_; r++) {
      char* theirs = (char*)roots + at;
      at += bytes[(size_t)r];
      if (rank_ != root && r != rank_) continue;
      if (r == root) {
        if (rank_ == root && bytes[(size_t)r])
          memmove(to_root ? theirs : mine, to_root ? mine : theirs, bytes[(size_t)r]);
        continue;
      }
      for (size_t o = 0; o < bytes[(size_t)r]; o += kChunkBytes) {
        const int n = (int)std::min(bytes[(size_t)r] - o, kChunkBytes);
        const bool send = (rank_ == root) != to_root;  // root sends when scattering
        char* p = (rank_ == root ? theirs : (char*)mine) + o;
        const int peer = rank_ == root ? r : root;
        if (send)
          LM_MPI("send", MPI_Send(p, n, MPI_BYTE, peer, 17, MPI_COMM_WORLD));
        else
          LM_MPI("receive", MPI_Recv(p, n, MPI_BYTE, peer, 17, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
      }
    }
    return Status::OK();
  }

  int rank_, size_;
  std::string version_;
  Watchdog dog_;
};

// "Open MPI v4.1.4" from MPI_Get_library_version's first line, up to a comma.
std::string LibraryVersion() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string s(v, (size_t)len);
  size_t cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
}

}  // namespace

Status StartMpi(LaunchInfo* launch, const CommOptions& opt, std::unique_ptr<Comm>* out) {
  int inited = 0, provided = 0;
  MPI_Initialized(&inited);
  // Only the main thread calls MPI; OpenMP's threads never do.
  if (!inited && MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return Status::IOError("mpi: MPI_Init failed");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // srun without an MPI plugin starts N singletons: each would train alone.
  if (size != launch->size || rank != launch->rank) {
    std::string msg = "the launcher started " + std::to_string(launch->size) + " ranks (" +
                      launch->source + "), but MPI sees rank " + std::to_string(rank) + " of " +
                      std::to_string(size) +
                      " (under Slurm: srun --mpi=pmix, or pmi2; see docs/distributed.md)";
    MPI_Finalize();
    return Status::Invalid(msg);
  }
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    MPI_Comm_rank(node, &launch->local_rank);
    MPI_Comm_size(node, &launch->local_size);
    MPI_Comm_free(&node);
  }
  *out = std::make_unique<MpiComm>(rank, size, LibraryVersion(), opt);
  return Status::OK();
}

}  // namespace comm
}  // namespace lm
#endif  // LM_HAVE_MPI
