// comm.cpp: the one-process collectives and the choice among the
// implementations (comm.h).
#include "comm/comm.h"

#include <unistd.h>
#include <cstring>

namespace lm {

namespace comm {
// mpi_comm.cpp, nccl_comm.cpp (each built only with its library).
Status StartMpi(LaunchInfo* launch, const CommOptions& opt, std::unique_ptr<Comm>* out);
Status StartNcclComm(const LaunchInfo& launch, int device, Comm* bootstrap, const CommOptions& opt,
                     std::unique_ptr<Comm>* out);
}  // namespace comm

namespace {

// One process: every collective is the identity.
class NoComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string Describe() const override { return "none"; }
  bool on_device() const override { return false; }
  Status AllReduce(double*, int, ReduceOp) override { return Status::OK(); }
  Status Broadcast(void*, size_t, int) override { return Status::OK(); }
  Status Gather(const void* send, const std::vector<size_t>& bytes, void* recv, int) override {
    if (recv != send) memmove(recv, send, bytes[0]);
    return Status::OK();
  }
  Status Scatter(const void* send, const std::vector<size_t>& bytes, void* recv, int) override {
    if (recv != send) memmove(recv, send, bytes[0]);
    return Status::OK();
  }
  Status ReduceToOwners(float*, size_t, size_t, const ParamShards&, void*) override {
    return Status::OK();
  }
  Status GatherFromOwners(float*, size_t, size_t, const ParamShards&, void*) override {
    return Status::OK();
  }
  Status SumDoubles(double*, int, void*) override { return Status::OK(); }
  Status Join(void*) override { return Status::OK(); }
  [[noreturn]] void Abort(int code) override { _exit(code); }
};

}  // namespace

bool HaveMpi() {
#ifdef LM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool HaveNccl() {
#ifdef LM_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

Status StartHostComm(LaunchInfo* launch, const CommOptions& opt, std::unique_ptr<Comm>* out) {
  if (launch->launcher != "mpi") {
    *out = std::make_unique<NoComm>();
    return Status::OK();
  }
#ifdef LM_HAVE_MPI
  return comm::StartMpi(launch, opt, out);
#else
  return Status::Invalid("launched as rank " + std::to_string(launch->rank) + " of " +
                         std::to_string(launch->size) + " (" + launch->source +
                         "), but this build has no MPI: install libopenmpi-dev "
                         "(scripts/install-deps.sh) and rebuild, or run one process");
#endif
}

Status StartNccl(const LaunchInfo& launch, int device, Comm* bootstrap, const CommOptions& opt,
                 std::unique_ptr<Comm>* out) {
#ifdef LM_HAVE_NCCL
  return comm::StartNcclComm(launch, device, bootstrap, opt, out);
#else
  return Status::Invalid(
      "several ranks on the CUDA backend need NCCL, which this build lacks (nccl.h was not found "
      "beside the CUDA toolkit at build time)");
#endif
}

}  // namespace lm
