// comm.h: the collectives of data-parallel training, as one interface with
// three implementations in common/comm/: none (one process), MPI on host
// memory (the CPU backend's buffers, and the control messages of every run
// that mpirun or srun launched), and NCCL on device memory and its own CUDA
// stream (the CUDA backend). Headers only, like backend.h: the backends call
// it, comm/ implements it, and neither links the other.
//
// Every rank makes the same calls in the same order with the same sizes (the
// collectives match by order). A call that fails, or a peer that died, is an
// error Status; a peer that stops answering is the watchdog's business
// (comm/comm.h: CommOptions::timeout_seconds).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "model/shards.h"
#include "util/status.h"

namespace lm {

enum class ReduceOp { kSum, kMax };

class Comm {
 public:
  virtual ~Comm() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "none", "mpi (Open MPI v4.1.4, 2 ranks)", "nccl 2.21.5 (8 ranks)".
  virtual std::string Describe() const = 0;
  // Where the data collectives' buffers live: false, host memory; true, the
  // memory of the CUDA device the communicator was made on.
  virtual bool on_device() const = 0;

  // --- Control: host memory, blocking. -------------------------------------
  // x[0..n) becomes the element-wise sum (or max) over the ranks.
  virtual Status AllReduce(double* x, int n, ReduceOp op) = 0;
  // root's `bytes` bytes of buf to every rank.
  virtual Status Broadcast(void* buf, size_t bytes, int root) = 0;
  // root receives each rank's bytes[r] bytes, in rank order, into recv (the
  // sum of bytes); the others' recv is unused (may be null).
  virtual Status Gather(const void* send, const std::vector<size_t>& bytes, void* recv,
                        int root) = 0;
  // The reverse: rank r receives its bytes[r] bytes of root's send.
  virtual Status Scatter(const void* send, const std::vector<size_t>& bytes, void* recv,
                         int root) = 0;

  // --- Data: floats in the backend's memory (on_device()). ----------------
  // Queued after the work already on `stream` (a cudaStream_t; null on the
  // host, where the calls block); Join makes `stream` wait for them.
  //
  // ReduceToOwners: over [lo, hi) of a buffer laid out as `shards` describe,
  // each owner's part of the range becomes the sum over the ranks of that
  // part (in place); the rest of every rank's range is left undefined.
  virtual Status ReduceToOwners(float* buf, size_t lo, size_t hi, const ParamShards& shards,
                                void* stream) = 0;
  // GatherFromOwners: over [lo, hi), every rank receives each owner's part (in place).
  virtual Status GatherFromOwners(float* buf, size_t lo, size_t hi, const ParamShards& shards,
                                  void* stream) = 0;
  // x[0..n) (doubles, in the backend's memory) becomes the sum over the ranks.
  virtual Status SumDoubles(double* x, int n, void* stream) = 0;
  virtual Status Join(void* stream) = 0;

  // Ends every rank of the job now, with `code` (after an error that the other
  // ranks do not know of, so that none waits for this one in a collective).
  [[noreturn]] virtual void Abort(int code) = 0;
};

}  // namespace lm
