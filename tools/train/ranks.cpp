// ranks.cpp: what makes lm-train data-parallel: the collectives for the way
// it was launched, the points where the ranks agree (Sync), rank 0's model,
// weights and optimizer state sent to the others, and the optimizer shards
// gathered for a checkpoint. With one process every call here is local.
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/make_backend.h"
#include "model/shards.h"
#include "trainer.h"
#include "util/cli.h"

namespace lm {

using Clock = std::chrono::steady_clock;

Status Trainer::StartComm() {
  LM_RETURN_IF_ERROR(DetectLaunch(&launch_));
  CommOptions co;
  co.timeout_seconds = opt_.comm_timeout;
  co.on_timeout = opt_.on_comm_timeout;
  if (launch_.launcher == "env") {
    // torchrun-style, without MPI: NCCL carries everything, so the GPUs only.
    if (opt_.device == "cpu")
      return Status::Usage("--device cpu with " + std::to_string(launch_.size) + " ranks (" +
                           launch_.source + "): the CPU backend's collectives are MPI's; " +
                           "launch with mpirun or srun");
    LM_RETURN_IF_ERROR(StartNccl(launch_, launch_.local_rank, nullptr, co, &host_comm_));
  } else {
    LM_RETURN_IF_ERROR(StartHostComm(&launch_, co, &host_comm_));
  }
  comm_ = data_comm_ = host_comm_.get();
  cli::SetRank(rank(), world());
  return Status::OK();
}

void Trainer::CloseComm() {
  backend_.reset();
  data_comm_ = comm_ = nullptr;
  device_comm_.reset();
  host_comm_.reset();
}

Status Trainer::Sync(Status local, const StopRequests* stop, Agreed* out) {
  double v[4] = {std::chrono::duration<double>(Clock::now() - session_start_).count(),
                 local.ok() ? 0.0 : (double)rank() + 1, stop ? (double)stop->stop_signal() : 0.0,
                 stop && stop->take_checkpoint() ? 1.0 : 0.0};
  Status s = comm_ ? comm_->AllReduce(v, 4, ReduceOp::kMax) : Status::OK();
  if (!s.ok()) return local.ok() ? s : local;
  clock_ = v[0];
  if (out) {
    out->signal = (int)v[2];
    out->checkpoint = v[3] > 0;
  }
  if (v[1] > 0) failure_shared_ = true;
  if (!local.ok()) return local;
  if (v[1] > 0)
    return Status::Invalid("rank " + std::to_string((int)v[1] - 1) +
                           " failed (its error is above); stopping");
  return Status::OK();
}

Status Trainer::ShareStatus(const Status& s, int root) {
  if (world() == 1) return s;
  std::string msg = s.message();
  uint64_t head[2] = {(uint64_t)s.code(), msg.size()};
  LM_RETURN_IF_ERROR(comm_->Broadcast(head, sizeof head, root));
  msg.resize(head[1]);
  LM_RETURN_IF_ERROR(comm_->Broadcast(&msg[0], msg.size(), root));
  if (rank() == root || head[0] == (uint64_t)Status::kOk) return s;
  failure_shared_ = true;
  msg = "rank " + std::to_string(root) + ": " + msg;
  switch ((Status::Code)head[0]) {
    case Status::kUsage:
      return Status::Usage(msg);
    case Status::kCorruption:
      return Status::Corruption(msg);
    case Status::kNotFound:
      return Status::NotFound(msg);
    case Status::kIOError:
      return Status::IOError(msg);
    case Status::kResource:
      return Status::Resource(msg);
    case Status::kInterrupted:
      return Status::Interrupted(msg);
    default:
      return Status::Invalid(msg);
  }
}

// Every rank must resume the same checkpoint: RUN is one directory that all
// of them see (a shared file system across machines).
Status Trainer::SameCheckpoint(const Checkpoint& meta, bool have_ckpt) {
  const double step = have_ckpt ? (double)meta.step : -1;
  double v[2] = {step, -step};
  LM_RETURN_IF_ERROR(comm_->AllReduce(v, 2, ReduceOp::kMax));
  if (v[0] == -v[1]) return Status::OK();
  failure_shared_ = true;
  return Status::Invalid(opt_.out_dir + ": the ranks see different checkpoints (rank " +
                         std::to_string(rank()) + ": " +
                         (have_ckpt ? "step " + std::to_string(meta.step) : std::string("none")) +
                         "): every rank needs the same run directory (a shared file system)");
}

// Rank 0's model (its options, its auto-size choice or its run's) is every
// rank's: sent as config.json text.
Status Trainer::ShareModel() {
  std::string text = rank() == 0 ? ConfigToHfJson(cfg_, (int)vocab_.eot_id()) : std::string();
  uint64_t n = text.size();
  LM_RETURN_IF_ERROR(comm_->Broadcast(&n, sizeof n, 0));
  text.resize(n);
  LM_RETURN_IF_ERROR(comm_->Broadcast(&text[0], n, 0));
  if (rank() == 0) return Status::OK();
  ModelConfig c;
  LM_RETURN_IF_ERROR(ConfigFromHfJson(text, &c));
  c.Pad();
  cfg_ = c;
  return Status::OK();
}

// Rank 0's weights to every rank; each rank its shard of rank 0's moments
// (m and v are whole on rank 0, unused elsewhere).
Status Trainer::ShareStartState(const std::vector<float>* params, const std::vector<float>* m,
                                const std::vector<float>* v, int64_t adam_step) {
  const ParamLayout layout = MakeParamLayout(cfg_);
  const ParamShards sh = MakeParamShards(layout, world());
  std::vector<float> p;
  if (rank() > 0) p.resize(layout.total);
  float* pp = rank() == 0 ? const_cast<float*>(params->data()) : p.data();
  LM_RETURN_IF_ERROR(comm_->Broadcast(pp, layout.total * sizeof(float), 0));
  LM_RETURN_IF_ERROR(comm_->Broadcast(&adam_step, sizeof adam_step, 0));
  std::vector<size_t> bytes;
  for (int r = 0; r < sh.ranks(); r++) bytes.push_back(sh.count(r) * sizeof(float));
  // Rank 0's shard starts the buffer: scattered in place.
  std::vector<float> ms, vs;
  if (rank() > 0) {
    ms.resize(std::max<size_t>(sh.count(rank()), 1));
    vs.resize(ms.size());
  }
  float* mp = rank() == 0 ? const_cast<float*>(m->data()) : ms.data();
  float* vp = rank() == 0 ? const_cast<float*>(v->data()) : vs.data();
  LM_RETURN_IF_ERROR(comm_->Scatter(mp, bytes, mp, 0));
  LM_RETURN_IF_ERROR(comm_->Scatter(vp, bytes, vp, 0));
  LM_RETURN_IF_ERROR(backend_->SetParams(pp));
  return backend_->SetOptimizerState(mp, vp, adam_step);
}

// Every rank's shard of the moments, gathered whole on rank 0 (whose own
// shard starts the buffer); the others' vectors hold their shard only.
Status Trainer::GatherOptimizerState(std::vector<float>* m, std::vector<float>* v,
                                     int64_t* adam_step) {
  const ParamLayout layout = MakeParamLayout(cfg_);
  const ParamShards sh = MakeParamShards(layout, world());
  const size_t n = rank() == 0 ? layout.total : sh.count(rank());
  m->resize(std::max<size_t>(n, 1));
  v->resize(m->size());
  LM_RETURN_IF_ERROR(backend_->GetOptimizerState(m->data(), v->data(), adam_step));
  std::vector<size_t> bytes;
  for (int r = 0; r < sh.ranks(); r++) bytes.push_back(sh.count(r) * sizeof(float));
  LM_RETURN_IF_ERROR(comm_->Gather(m->data(), bytes, m->data(), 0));
  return comm_->Gather(v->data(), bytes, v->data(), 0);
}

// trainer-state.json's "data_parallel" (several ranks only): how the run was
// split, and that the optimizer state was gathered into one file that any
// number of ranks can resume.
std::string Trainer::DataParallelJson() const {
  nlohmann::json j = nlohmann::json::parse(
      ShardsJson(MakeParamLayout(cfg_), MakeParamShards(MakeParamLayout(cfg_), world())));
  j["launcher"] = launch_.launcher;
  j["collectives"] = data_comm_->Describe();
  j["optimizer_file"] = "gathered";
  return j.dump();
}

}  // namespace lm
