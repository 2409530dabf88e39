// fastgan CUDA kernels: the launchers, as seen by the torch glue (csrc/cuda/bindings.cpp).
//
// No torch headers here or in the .cu files: every launcher takes raw device pointers, sizes, a
// dtype code and a cudaStream_t, launches on that stream without synchronising the host, and
// returns the launch's cudaError_t. A batched tensor is passed as B rows of M elements, row b at
// [data + b·M, data + (b + 1)·M) in memory order (the bindings make sure the layout is
// sample-blocked, see csrc/common/prepare.h). Per-sample vectors and scalars that the backward reads
// (grad_out, norms, alpha) are passed as DeviceVector and read on the device, never on the host.
//
// Operators that reduce across blocks need a workspace of *_workspace_bytes(...) bytes of device
// memory (any content; the launcher clears the counters in it with cudaMemsetAsync on the same
// stream); it must stay allocated until the kernel has run (stream-ordered allocation does that).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace fastgan {
namespace cuda {

// Element types of the tensors; the accumulation type is double for kFloat64, float otherwise.
enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

// A vector read element-wise on the device: element i at data[i * stride] (stride 0 for a
// scalar or an expanded vector), converted to the accumulation type.
struct DeviceVector {
  const void* data;
  DType dtype;
  int64_t stride;
};

// --------------------------------------------------------------------------- interpolate
// out = fake + alpha_b (real − fake); alpha has B elements of dtype `dtype` (any stride).
cudaError_t interpolate_forward(const void* real, const void* fake, DeviceVector alpha, int64_t B, int64_t M,
                                DType dtype, void* out, cudaStream_t stream);

std::size_t interpolate_backward_workspace_bytes(int64_t B, int64_t M, DType dtype);
// dreal = alpha_b·grad, dfake = (1 − alpha_b)·grad, dalpha_b = Σ grad·(real − fake) over row b.
// Each of dreal, dfake, dalpha may be null (not wanted); real, fake and the workspace are read only
// when dalpha is wanted.
cudaError_t interpolate_backward(const void* grad, const void* real, const void* fake, DeviceVector alpha, int64_t B,
                                 int64_t M, DType dtype, void* dreal, void* dfake, void* dalpha, void* workspace,
                                 cudaStream_t stream);

// --------------------------------------------------------------------- grad_norm_penalty
std::size_t grad_norm_penalty_workspace_bytes(int64_t B, int64_t M, DType dtype);
// norms_b = ‖row b‖₂ (fp64 for every dtype: docs/design.md §6), loss = mean_b φ(norms_b − center) (dtype).
cudaError_t grad_norm_penalty_forward(const void* grads, int64_t B, int64_t M, DType dtype, double center,
                                      bool one_sided, void* loss, void* norms, void* workspace, cudaStream_t stream);
// dgrads = grad_out · φ'(norms_b − center) / (B · norms_b) · grads (0 where norms_b = 0); grad_out
// is a scalar (stride 0), norms a vector of fp64.
cudaError_t grad_norm_penalty_backward(DeviceVector grad_out, const void* grads, DeviceVector norms, int64_t B,
                                       int64_t M, DType dtype, double center, bool one_sided, void* dgrads,
                                       cudaStream_t stream);

// ------------------------------------------------------------------ reconstruction_error
std::size_t reconstruction_error_workspace_bytes(int64_t B, int64_t M, DType dtype);
// out_b = mean over row b of |x − recon|^p, p ∈ {1, 2}.
cudaError_t reconstruction_error_forward(const void* x, const void* recon, int64_t B, int64_t M, DType dtype, int p,
                                         void* out, void* workspace, cudaStream_t stream);
// dx = grad_out_b / M · d|x − recon|^p/dx, drecon = −dx; either output may be null.
cudaError_t reconstruction_error_backward(DeviceVector grad_out, const void* x, const void* recon, int64_t B,
                                          int64_t M, DType dtype, int p, void* dx, void* drecon, cudaStream_t stream);

// ---------------------------------------------------------------------- adversarial_loss
// kind: the codes of fastgan::terms::Kind (csrc/common/terms.h). A side is absent when its
// pointer is null (its numel is then ignored); each side is reduced over all its elements.
std::size_t adversarial_loss_workspace_bytes(int64_t n_real, int64_t n_fake, DType dtype);
// loss = mean t_real(real) + mean t_fake(fake)
cudaError_t adversarial_loss_forward(const void* real, int64_t n_real, const void* fake, int64_t n_fake, DType dtype,
                                     int kind, double real_target, double fake_target, double margin, void* loss,
                                     void* workspace, cudaStream_t stream);
// dreal = grad_out / n_real · t_real'(real), dfake = grad_out / n_fake · t_fake'(fake); a side is
// computed when both its input and output pointers are non-null. grad_out is a scalar.
cudaError_t adversarial_loss_backward(DeviceVector grad_out, const void* real, int64_t n_real, const void* fake,
                                      int64_t n_fake, DType dtype, int kind, double real_target, double fake_target,
                                      double margin, void* dreal, void* dfake, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastgan
