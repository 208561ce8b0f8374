// sharded_test.cpp: the CPU backend's data-parallel optimizer step (ZeRO-1,
// backend.h BackendOptions::comm) against the unsharded one. Two or three
// backends, one thread each, train on their rows of a batch through an
// in-process stand-in for the collectives (host memory, a barrier between
// phases); one backend trains on all the rows alone. After each step every
// rank must hold the same weights, and those and the moments (the shards
// put together) must match the single backend's up to the order of fp32
// sums.
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../test.h"
#include "backend/comm.h"
#include "cpu/backend_cpu.h"
#include "model/params.h"
#include "model/shards.h"
#include "tests/thread_barrier.h"

using namespace lm;

namespace {

// What the ranks share: a barrier, and each rank's buffer of the current call.
struct World {
  explicit World(int n) : size(n), ptr(n), dbl(n), barrier(n) {}
  void Barrier() { barrier.Wait(); }
  int size;
  std::vector<float*> ptr;
  std::vector<std::vector<double>> dbl;
  lm_test::ThreadBarrier barrier;
};

// The collectives on host memory between threads: a stand-in for MPI.
class ThreadComm : public Comm {
 public:
  ThreadComm(World* w, int rank) : w_(w), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return w_->size; }
  std::string Describe() const override { return "threads"; }
  bool on_device() const override { return false; }
  Status AllReduce(double* x, int n, ReduceOp op) override {
    w_->dbl[rank_].assign(x, x + n);
    w_->Barrier();
    for (int i = 0; i < n; i++) {
      double v = w_->dbl[0][i];
      for (int r = 1; r < w_->size; r++)
        v = op == ReduceOp::kSum ? v + w_->dbl[r][i] : std::max(v, w_->dbl[r][i]);
      x[i] = v;
    }
    w_->Barrier();
    return Status::OK();
  }
  Status Broadcast(void*, size_t, int) override { return Status::Invalid("unused"); }
  Status Gather(const void*, const std::vector<size_t>&, void*, int) override {
    return Status::Invalid("unused");
  }
  Status Scatter(const void*, const std::vector<size_t>&, void*, int) override {
    return Status::Invalid("unused");
  }
  // Each owner sums its part over every rank's buffer (in rank order, as an
  // MPI reduction of two or three ranks would).
  Status ReduceToOwners(float* buf, size_t lo, size_t hi, const ParamShards& s, void*) override {
    w_->ptr[rank_] = buf;
    w_->Barrier();
    const auto [a, b] = s.Part(rank_, lo, hi);
    for (size_t i = a; i < b; i++) {
      float v = w_->ptr[0][i];
      for (int r = 1; r < w_->size; r++) v += w_->ptr[r][i];
      buf[i] = v;
    }
    w_->Barrier();
    return Status::OK();
  }
  Status GatherFromOwners(float* buf, size_t lo, size_t hi, const ParamShards& s, void*) override {
    w_->ptr[rank_] = buf;
    w_->Barrier();
    for (int r = 0; r < w_->size; r++) {
      const auto [a, b] = s.Part(r, lo, hi);
      if (r != rank_ && a < b) memcpy(buf + a, w_->ptr[r] + a, (b - a) * sizeof(float));
    }
    w_->Barrier();
    return Status::OK();
  }
  Status SumDoubles(double* x, int n, void*) override { return AllReduce(x, n, ReduceOp::kSum); }
  Status Join(void*) override { return Status::OK(); }
  [[noreturn]] void Abort(int) override { abort(); }

 private:
  World* w_;
  int rank_;
};

ModelConfig Tiny() {
  ModelConfig c;
  c.vocab_size = 50;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 24;
  c.context = 16;
  c.tied_embeddings = false;
  c.Pad();
  return c;
}

std::unique_ptr<Backend> Make(const ModelConfig& c, int B, Comm* comm) {
  std::unique_ptr<Backend> b = NewCpuBackend();
  BackendOptions o;
  o.threads = 1;
  o.max_batch = B;
  o.comm = comm;
  if (!b->Init(c, o).ok()) return nullptr;
  return b;
}

struct Result {
  std::vector<float> params, m, v;  // m, v: this rank's shard
  float norm = 0;
  std::vector<float> losses;  // StepLoss of each step
};

// `steps` steps of AdamW over `rows` rows (of T tokens) per rank: rank r
// takes rows [r*rows, (r+1)*rows) of each step's batch of ranks*rows.
void Train(const ModelConfig& c, int ranks, int rank, Comm* comm, int rows, int steps,
           Result* out) {
  const int T = 12;
  ParamLayout L = MakeParamLayout(c);
  std::vector<float> p(L.total);
  InitParams(c, L, 7, p.data());
  auto b = Make(c, rows, comm);
  CHECK(b != nullptr);
  ParamShards sh = MakeParamShards(L, comm ? comm->size() : 1);
  const int me = comm ? comm->rank() : 0;
  std::vector<float> zero(std::max<size_t>(sh.count(me), 1), 0.0f);
  CHECK_OK(b->SetParams(p.data()));
  CHECK_OK(b->SetOptimizerState(zero.data(), zero.data(), 0));
  AdamWConfig a;
  a.lr = 1e-2f;
  a.grad_clip = 0.5f;  // clipping on: the norm must be the global one
  for (int s = 0; s < steps; s++) {
    std::mt19937 rng(100 + s);
    std::vector<int32_t> ids((size_t)ranks * rows * (T + 1));
    for (auto& x : ids) x = (int32_t)(rng() % (uint32_t)c.vocab_size);
    std::vector<int32_t> in((size_t)rows * T), tg((size_t)rows * T);
    for (int r = 0; r < rows; r++)
      for (int t = 0; t < T; t++) {
        const size_t row = (size_t)(rank * rows + r) * (T + 1);
        in[(size_t)r * T + t] = ids[row + t];
        tg[(size_t)r * T + t] = ids[row + t + 1];
      }
    CHECK_OK(b->ZeroGrad());
    float loss = 0;
    bool skipped = false;
    // The loss kept for StepLoss, weighted by grad_scale (this rank's share).
    CHECK_OK(b->ForwardBackward(in.data(), tg.data(), rows, T, 1.0f / ranks, nullptr));
    CHECK_OK(b->OptimizerStep(a, &out->norm, &skipped));
    CHECK(!skipped);
    CHECK_OK(b->StepLoss(&loss));  // summed over the ranks by OptimizerStep
    out->losses.push_back(loss);
  }
  out->params.resize(L.total);
  CHECK_OK(b->GetParams(out->params.data()));
  out->m.resize(zero.size());
  out->v.resize(zero.size());
  int64_t step = 0;
  CHECK_OK(b->GetOptimizerState(out->m.data(), out->v.data(), &step));
  CHECK_EQ(step, (int64_t)steps);
}

void CheckShardedMatchesOne(int ranks) {
  const ModelConfig c = Tiny();
  const int rows = 2, steps = 3;
  Result one;
  Train(c, 1, 0, nullptr, rows * ranks, steps, &one);
  World w(ranks);
  std::vector<ThreadComm> comms;
  for (int r = 0; r < ranks; r++) comms.emplace_back(&w, r);
  std::vector<Result> res(ranks);
  std::vector<std::thread> th;
  for (int r = 0; r < ranks; r++)
    th.emplace_back([&, r] { Train(c, ranks, r, &comms[r], rows, steps, &res[r]); });
  for (auto& t : th) t.join();
  const ParamShards sh = MakeParamShards(MakeParamLayout(c), ranks);
  for (int r = 0; r < ranks; r++) {
    CHECK(res[r].params == res[0].params);  // every rank holds the same weights
    CHECK_NEAR(res[r].norm, one.norm, 1e-5 * one.norm);
    for (int s = 0; s < steps; s++)  // every rank: the loss over all the rows
      CHECK_NEAR(res[r].losses[s], one.losses[s], 1e-6 * one.losses[s]);
    for (size_t i = 0; i < one.params.size(); i++)
      CHECK_NEAR(res[r].params[i], one.params[i], 1e-5);
    for (size_t i = 0; i < sh.count(r); i++) {
      CHECK_NEAR(res[r].m[i], one.m[sh.lo(r) + i], 1e-6);
      CHECK_NEAR(res[r].v[i], one.v[sh.lo(r) + i], 1e-7);
    }
  }
}

}  // namespace

TEST(two_ranks_sharded_adamw_matches_one) {
  CheckShardedMatchesOne(2);
}
TEST(three_ranks_sharded_adamw_matches_one) {
  CheckShardedMatchesOne(3);
}

// Without the comm, a shard is the whole buffer: the unsharded step exactly.
TEST(one_rank_comm_is_the_plain_step) {
  const ModelConfig c = Tiny();
  Result plain, one;
  Train(c, 1, 0, nullptr, 2, 2, &plain);
  World w(1);
  ThreadComm comm(&w, 0);
  Train(c, 1, 0, &comm, 2, 2, &one);
  CHECK(plain.params == one.params);
  CHECK(plain.losses == one.losses);
  CHECK(plain.m == one.m);
  CHECK(plain.v == one.v);
}

TEST_MAIN()
