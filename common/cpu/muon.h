// muon.h: the Muon optimizer on the CPU (MomentUm Orthogonalized by
// Newton-Schulz; Keller Jordan et al. 2024, as in modded-nanogpt), written
// plainly as the reference, in the style of ops.h. Each piece is the CPU twin
// of one CUDA kernel or product of common/cuda/muon.cu, with the same
// arguments in the same order.
//
// One Muon step of a weight matrix W (rows,cols) with gradient G:
//   G' = G * grad_scale                       (clipping folded in)
//   M += (1 - mu) (G' - M)                    momentum, the lerp form
//   U  = G' + mu (M - G')  (Nesterov)  or  M
//   X0 = U / (||U||_F + 1e-7)                 so that every singular value <= 1
//   5 times, with k = min(rows, cols) and (a, b, c) = (3.4445, -4.7750, 2.0315):
//     A = X X^T (k,k), B = c A A + b A, X = B X + a X   (rows <= cols)
//     A = X^T X (k,k), B = c A A + b A, X = X B + a X   (rows >  cols)
//   (three products an iteration, the coefficients in their alpha and beta)
//   W  = W (1 - lr wd) - lr sqrt(max(1, rows/cols)) X
// The iteration maps each singular value s of X0 through the odd quintic
// p(s) = a s + b s^3 + c s^5 and keeps the singular vectors, so X ends near
// U V^T (its singular values land in about [0.7, 1.2], not exactly 1: the
// coefficients trade exactness for speed at small s). The shape factor makes
// the update's RMS independent of the aspect ratio.
//
// Conventions as in ops.h: row-major, contiguous; OpenMP with fixed
// partitions and fixed reduction orders; a double twin of each function for
// the tests.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lm {
namespace cpu {

// The quintic's coefficients (modded-nanogpt), chosen to maximise the slope at
// zero so that 5 iterations suffice.
constexpr float kNsA = 3.4445f, kNsB = -4.7750f, kNsC = 2.0315f;
constexpr float kNsEps = 1e-7f;  // added to the Frobenius norm

// One matrix's Muon settings for a step.
struct MuonStep {
  float lr = 0.02f;        // this step's learning rate (schedule applied)
  float momentum = 0.95f;  // mu
  bool nesterov = true;
  float weight_decay = 0;  // decoupled: W *= 1 - lr * wd
  float grad_scale = 1;    // clipping
  int ns_steps = 5;
};

// sqrt(max(1, rows / cols)): the shape factor of the update.
double muon_shape_scale(int64_t rows, int64_t cols);

// ---- the pieces (each the twin of a CUDA kernel) ------------------------------
// out (n) = the update before orthogonalisation; mom (n) updated in place:
//   g = grad * grad_scale;  mom += (1 - mu) * (g - mom)
//   out = nesterov ? g + mu * (mom - g) : mom
void muon_momentum(float* out, float* mom, const float* grad, int64_t n, float mu, bool nesterov,
                   float grad_scale);
// out (n) = in / (||in|| + kNsEps), the sum of squares in double (out may alias in).
void ns_normalize(float* out, const float* in, int64_t n);
// p (n) = p * (1 - lr * wd) - lr * scale * x.
void muon_apply(float* p, const float* x, int64_t n, float lr, float wd, float scale);

// ---- the orthogonalisation and the whole step --------------------------------
// Floats of scratch newton_schulz and muon_update need for a (rows,cols) matrix.
size_t newton_schulz_scratch(int rows, int cols);
// out (rows,cols) = `steps` quintic iterations from g / (||g||_F + kNsEps).
// out may alias g. scratch: newton_schulz_scratch(rows, cols) values. Runs on
// the calling thread (single-threaded BLAS), so that matrices can be spread
// over threads and the result never depends on the thread count.
void newton_schulz(float* out, const float* g, int rows, int cols, int steps, float* scratch);
// One Muon step of W (rows,cols) given its gradient, as described above. mom
// is the momentum buffer (rows*cols). Calling thread only, like newton_schulz.
void muon_update(float* w, const float* grad, float* mom, int rows, int cols, const MuonStep& s,
                 float* scratch);

// ---- double-precision twins (the same code), for the tests ----------------------
void muon_momentum(double* out, double* mom, const double* grad, int64_t n, float mu, bool nesterov,
                   float grad_scale);
void ns_normalize(double* out, const double* in, int64_t n);
void muon_apply(double* p, const double* x, int64_t n, float lr, float wd, float scale);
void newton_schulz(double* out, const double* g, int rows, int cols, int steps, double* scratch);
void muon_update(double* w, const double* grad, double* mom, int rows, int cols, const MuonStep& s,
                 double* scratch);

}  // namespace cpu
}  // namespace lm
