// nccl_comm.cpp: the collectives over NCCL (backend/comm.h) for the CUDA
// backend: gradients and weights in device memory, on the communicator's own
// stream, so that the backend can overlap them with its backward pass (Join
// orders them before the backend's next work). The control calls on host
// memory go through a device buffer, synchronously: they serve a
// torchrun-style launch, which has no MPI. A NCCL kernel waits for a dead
// peer forever: the watchdog polls the last event queued and, past the
// timeout, aborts the communicator.
#ifdef LM_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "comm/comm.h"
#include "comm/watchdog.h"
#include "util/file.h"

namespace lm {
namespace comm {

namespace {

constexpr size_t kStageBytes = 64u << 20;  // the host calls' device buffer

#define LM_NCCL(what, call)                                                                 \
  do {                                                                                      \
    ncclResult_t r_ = (call);                                                               \
    if (r_ != ncclSuccess)                                                                  \
      return Status::IOError(std::string("nccl: ") + what + ": " + ncclGetErrorString(r_) + \
                             " (another rank has probably died)");                          \
  } while (0)
#define LM_CUDA_OK(what, call)                                                              \
  do {                                                                                      \
    cudaError_t e_ = (call);                                                                \
    if (e_ != cudaSuccess)                                                                  \
      return Status::IOError(std::string("nccl: ") + what + ": " + cudaGetErrorString(e_)); \
  } while (0)

class NcclComm : public Comm {
 public:
  NcclComm(int rank, int size, int device, const CommOptions& opt)
      : rank_(rank),
        size_(size),
        device_(device),
        dog_(
            opt, [this] { Kill(); }, [this] { return Quiet(); }) {}
  ~NcclComm() override {
    polled_ = false;
    dog_.Disarm();
    if (comm_) ncclCommDestroy(comm_);
    if (stage_) cudaFree(stage_);
    if (in_) cudaEventDestroy(in_);
    if (out_) cudaEventDestroy(out_);
    if (s_) cudaStreamDestroy(s_);
  }

  Status Init(const ncclUniqueId& id) {
    LM_CUDA_OK("set device", cudaSetDevice(device_));
    LM_CUDA_OK("stream", cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    LM_CUDA_OK("event", cudaEventCreateWithFlags(&in_, cudaEventDisableTiming));
    LM_CUDA_OK("event", cudaEventCreateWithFlags(&out_, cudaEventDisableTiming));
    LM_CUDA_OK("staging buffer", cudaMalloc(&stage_, kStageBytes));
    Watch w(&dog_, "NCCL initialisation");
    LM_NCCL("init", ncclCommInitRank(&comm_, size_, id, rank_));
    return Status::OK();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string Describe() const override {
    int v = 0;
    ncclGetVersion(&v);
    return "nccl " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
           std::to_string(v % 100) + " (" + std::to_string(size_) + " ranks)";
  }
  bool on_device() const override { return true; }

  // --- control, staged through the device buffer ---------------------------
  Status AllReduce(double* x, int n, ReduceOp op) override {
    const size_t bytes = (size_t)n * sizeof(double);
    if (bytes > kStageBytes) return Status::Invalid("nccl: all-reduce of too many values");
    LM_CUDA_OK("copy", cudaMemcpyAsync(stage_, x, bytes, cudaMemcpyHostToDevice, s_));
    LM_NCCL("all-reduce", ncclAllReduce(stage_, stage_, (size_t)n, ncclDouble,
                                        op == ReduceOp::kSum ? ncclSum : ncclMax, comm_, s_));
    LM_CUDA_OK("copy", cudaMemcpyAsync(x, stage_, bytes, cudaMemcpyDeviceToHost, s_));
    return Wait("all-reduce");
  }
  Status Broadcast(void* buf, size_t bytes, int root) override {
    for (size_t o = 0; o < bytes; o += kStageBytes) {
      const size_t n = std::min(bytes - o, kStageBytes);
      char* p = (char*)buf + o;
      if (rank_ == root)
        LM_CUDA_OK("copy", cudaMemcpyAsync(stage_, p, n, cudaMemcpyHostToDevice, s_));
      LM_NCCL("broadcast", ncclBroadcast(stage_, stage_, n, ncclUint8, root, comm_, s_));
      if (rank_ != root)
        LM_CUDA_OK("copy", cudaMemcpyAsync(p, stage_, n, cudaMemcpyDeviceToHost, s_));
      LM_RETURN_IF_ERROR(Wait("broadcast"));
    }
    return Status::OK();
  }
  Status Gather(const void* send, const std::vector<size_t>& bytes, void* recv, int root) override {
    return Exchange(const_cast<void*>(send), bytes, recv, root, true);
  }
  Status Scatter(const void* send, const std::vector<size_t>& bytes, void* recv,
                 int root) override {
    return Exchange(const_cast<void*>(send), bytes, recv, root, false);
  }

  // --- data, queued on the communicator's stream -----------------------------
  // In place: each owner's part becomes the sum over the ranks (one
  // ncclReduce per owner), or every rank gets each owner's part (one
  // ncclBroadcast per owner), the calls of each grouped.
  Status ReduceToOwners(float* buf, size_t lo, size_t hi, const ParamShards& s,
                        void* stream) override {
    return PerOwner(stream, "reduce", lo, hi, s, [&](int r, size_t a, size_t n) {
      return ncclReduce(buf + a, buf + a, n, ncclFloat, ncclSum, r, comm_, s_);
    });
  }
  Status GatherFromOwners(float* buf, size_t lo, size_t hi, const ParamShards& s,
                          void* stream) override {
    return PerOwner(stream, "all-gather", lo, hi, s, [&](int r, size_t a, size_t n) {
      return ncclBroadcast(buf + a, buf + a, n, ncclFloat, r, comm_, s_);
    });
  }
  Status SumDoubles(double* x, int n, void* stream) override {
    LM_RETURN_IF_ERROR(After(stream));
    LM_NCCL("all-reduce", ncclAllReduce(x, x, (size_t)n, ncclDouble, ncclSum, comm_, s_));
    return Queued("all-reduce");
  }
  Status Join(void* stream) override {
    LM_CUDA_OK("event", cudaEventRecord(out_, s_));
    LM_CUDA_OK("event", cudaStreamWaitEvent((cudaStream_t)stream, out_, 0));
    return Status::OK();
  }

  [[noreturn]] void Abort(int code) override {
    Kill();
    _exit(code);
  }

 private:
  // The communicator's stream waits for the work already on `stream`.
  Status After(void* stream) {
    LM_CUDA_OK("event", cudaEventRecord(in_, (cudaStream_t)stream));
    LM_CUDA_OK("event", cudaStreamWaitEvent(s_, in_, 0));
    return Status::OK();
  }
  // call(owner, begin, count) for each owner's part of [lo, hi), grouped,
  // after the work on `stream`.
  template <class F>
  Status PerOwner(void* stream, const char* what, size_t lo, size_t hi, const ParamShards& s,
                  F call) {
    LM_RETURN_IF_ERROR(After(stream));
    LM_NCCL("group", ncclGroupStart());
    for (int r = 0; r < s.ranks(); r++) {
      const auto [a, b] = s.Part(r, lo, hi);
      if (a < b) LM_NCCL(what, call(r, a, b - a));
    }
    LM_NCCL(what, ncclGroupEnd());
    return Queued(what);
  }
  // Marks the queued work for the watchdog, which polls its event (Quiet).
  Status Queued(const char* what) {
    LM_CUDA_OK("event", cudaEventRecord(out_, s_));
    polled_ = true;
    dog_.Arm(what);
    return Status::OK();
  }
  // A host call: its work queued, then waited for.
  Status Wait(const char* what) {
    LM_RETURN_IF_ERROR(Queued(what));
    cudaError_t e = cudaStreamSynchronize(s_);
    dog_.Disarm();
    LM_CUDA_OK(what, e);
    return Status::OK();
  }
  // Whether the last work queued has finished (never before any was: the
  // initialisation is watched by the clock alone).
  bool Quiet() {
    if (!polled_) return false;
    cudaSetDevice(device_);
    return cudaEventQuery(out_) == cudaSuccess;
  }
  void Kill() {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  // Gather (to_root) or Scatter through the device buffer, rank by rank.
  Status Exchange(void* mine, const std::vector<size_t>& bytes, void* roots, int root,
                  bool to_root) {
    if ((int)bytes.size() != size_) return Status::Invalid("nccl: gather/scatter: sizes per rank");
    size_t at = 0;
    for (int r = 0; r < size_; r++) {
      char* theirs = (char*)roots + at;
      at += bytes[(size_t)r];
      if (r == root) {
        if (rank_ == root && bytes[(size_t)r])
          memmove(to_root ? theirs : mine, to_root ? mine : theirs, bytes[(size_t)r]);
        continue;
      }
      if (rank_ != root && rank_ != r) continue;
      for (size_t o = 0; o < bytes[(size_t)r]; o += kStageBytes) {
        const size_t n = std::min(bytes[(size_t)r] - o, kStageBytes);
        char* p = (rank_ == root ? theirs : (char*)mine) + o;
        const bool send = (rank_ == root) != to_root;
        if (send) LM_CUDA_OK("copy", cudaMemcpyAsync(stage_, p, n, cudaMemcpyHostToDevice, s_));
        if (send)
          LM_NCCL("send", ncclSend(stage_, n, ncclUint8, rank_ == root ? r : root, comm_, s_));
        else
          LM_NCCL("receive", ncclRecv(stage_, n, ncclUint8, rank_ == root ? r : root, comm_, s_));
        if (!send) LM_CUDA_OK("copy", cudaMemcpyAsync(p, stage_, n, cudaMemcpyDeviceToHost, s_));
        LM_RETURN_IF_ERROR(Wait(to_root ? "gather" : "scatter"));
      }
    }
    return Status::OK();
  }

  int rank_, size_, device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t s_ = nullptr;
  cudaEvent_t in_ = nullptr, out_ = nullptr;
  void* stage_ = nullptr;
  std::atomic<bool> polled_{false};
  Watchdog dog_;
};

// The unique id without MPI: LM_NCCL_ID_FILE (rank 0 writes it, the others
// wait for it), or NCCL's bootstrap address (NCCL_COMM_ID, or
// MASTER_ADDR:MASTER_PORT), from which every rank derives the same id.
Status IdFromEnvironment(const LaunchInfo& launch, const CommOptions& opt, ncclUniqueId* id) {
  if (const char* path = getenv("LM_NCCL_ID_FILE")) {
    if (launch.rank == 0) {
      LM_NCCL("unique id", ncclGetUniqueId(id));
      return WriteFileAtomic(path, std::string(id->internal, sizeof id->internal));
    }
    const double limit = opt.timeout_seconds > 0 ? opt.timeout_seconds : 600;
    for (double waited = 0;; waited += 0.1) {
      std::string text;
      if (ReadFile(path, &text).ok() && text.size() == sizeof id->internal) {
        memcpy(id->internal, text.data(), sizeof id->internal);
        return Status::OK();
      }
      if (waited > limit)
        return Status::IOError(std::string(path) +
                               ": rank 0 never wrote the NCCL id (LM_NCCL_ID_FILE)");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  const char* addr = getenv("MASTER_ADDR");
  const char* port = getenv("MASTER_PORT");
  if (!getenv("NCCL_COMM_ID") && addr && port)
    setenv("NCCL_COMM_ID", (std::string(addr) + ":" + port).c_str(), 1);
  if (!getenv("NCCL_COMM_ID"))
    return Status::Usage(
        "a launch by RANK/WORLD_SIZE needs the NCCL id's rendezvous: LM_NCCL_ID_FILE (a shared "
        "file), NCCL_COMM_ID=host:port, or MASTER_ADDR and MASTER_PORT");
  LM_NCCL("unique id (NCCL_COMM_ID)", ncclGetUniqueId(id));
  return Status::OK();
}

}  // namespace

Status StartNcclComm(const LaunchInfo& launch, int device, Comm* bootstrap, const CommOptions& opt,
                     std::unique_ptr<Comm>* out) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    return Status::Resource("nccl: no CUDA GPU visible on rank " + std::to_string(launch.rank));
  // A scheduler that gives each rank its own GPU (CUDA_VISIBLE_DEVICES of
  // one) leaves it device 0, whatever its local rank.
  if (device >= count && count == 1) device = 0;
  if (device >= count)
    return Status::Invalid("rank " + std::to_string(launch.rank) + " takes GPU " +
                           std::to_string(device) + " (its local rank), but sees " +
                           std::to_string(count));
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (bootstrap) {
    if (launch.rank == 0) LM_NCCL("unique id", ncclGetUniqueId(&id));
    LM_RETURN_IF_ERROR(bootstrap->Broadcast(&id, sizeof id, 0));
  } else {
    LM_RETURN_IF_ERROR(IdFromEnvironment(launch, opt, &id));
  }
  auto c = std::make_unique<NcclComm>(launch.rank, launch.size, device, opt);
  LM_RETURN_IF_ERROR(c->Init(id));
  *out = std::move(c);
  return Status::OK();
}

}  // namespace comm
}  // namespace lm
#endif  // LM_HAVE_NCCL
