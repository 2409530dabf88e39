// fastgan: the CUDA kernels (csrc/cuda/*.cu, declared in launchers.h) registered as the CUDA
// implementations of the operators declared in csrc/fastgan.cpp.
//
// This is the only CUDA file that sees torch. Every operator is prepared exactly as the CPU
// kernel prepares it — the same checks, memory layout and outputs, written once in
// csrc/common/prepare.h with this file's CudaDevice as the device policy — and then launched on
// torch's current stream for the tensors' device under a device guard, with a workspace from
// torch's caching allocator. (The guard is taken after the preparation: the torch operations
// there, contiguous copies and allocations, each work on their tensors' device themselves.)
// Nothing here waits for the device: grad_out, norms and alpha are handed to the kernels by
// pointer, never read on the host.
#include "launchers.h"

#include "../common/prepare.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace fastgan {
namespace cuda {
// The torch-facing functions have the operators' names; the launchers they call (launchers.h,
// namespace fastgan::cuda) are named *_forward / *_backward too, hence their own namespace.
namespace ops {

bool supported(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

// The device policy of prepare::prepare_<op>: a CUDA tensor of a dtype the kernels support.
struct CudaDevice {
  static void check_float(const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.device().is_cuda(), "fastgan: the cuda kernels take CUDA tensors, ", name, " is on ", t.device());
    TORCH_CHECK(supported(t.scalar_type()), "fastgan: ", name,
                " must be a float32, float64, float16 or bfloat16 tensor, got ", t.scalar_type());
  }
};

DType dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    default: return DType::kFloat32;
  }
}

DType dtype_code(const at::Tensor& t) { return dtype_code(t.scalar_type()); }

at::ScalarType acc_dtype(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// A vector the kernels read on the device (grad_out, norms, alpha): moved to the device of `like`
// and, in an unsupported dtype, converted to like's accumulation dtype (what the CPU kernels
// convert grad_out to) — both without a host sync for a CUDA tensor. Element i is read at
// data[i · stride]; a scalar (numel 1) is read at its only element. `keep` holds the storage
// until the launch is enqueued (the caching allocator orders its reuse after the kernel).
DeviceVector device_vector(const at::Tensor& t, const at::Tensor& like, at::Tensor& keep) {
  keep = t;
  if (keep.device() != like.device()) keep = keep.to(like.device());
  if (!supported(keep.scalar_type())) keep = keep.to(acc_dtype(like));
  const int64_t stride = keep.dim() == 1 ? keep.stride(0) : 0;
  return {keep.const_data_ptr(), dtype_code(keep), stride};
}

// Device memory for a launcher's workspace (null when it needs none).
void* workspace(std::size_t bytes, const at::Tensor& like, at::Tensor& keep) {
  if (bytes == 0) return nullptr;
  keep = at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
  return keep.mutable_data_ptr();
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

const void* cptr(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }
void* ptr_if(const at::Tensor& t, bool needed) { return needed ? t.mutable_data_ptr() : nullptr; }

// ------------------------------------------------------------------------------ interpolate
at::Tensor interpolate(const at::Tensor& real_in, const at::Tensor& fake_in, const at::Tensor& alpha_in) {
  const auto p = prepare::prepare_interpolate<CudaDevice>(real_in, fake_in, alpha_in);
  const c10::cuda::CUDAGuard guard(p.real.device());
  at::Tensor alpha_keep;
  const DeviceVector alpha = device_vector(alpha_in, p.real, alpha_keep);
  C10_CUDA_CHECK(interpolate_forward(p.real.const_data_ptr(), p.fake.const_data_ptr(), alpha, p.B, p.M,
                                     dtype_code(p.real), p.out.mutable_data_ptr(), current_stream()));
  return p.out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> interpolate_backward(const at::Tensor& grad_in,
                                                                    const at::Tensor& real_in,
                                                                    const at::Tensor& fake_in,
                                                                    const at::Tensor& alpha_in, bool need_real,
                                                                    bool need_fake, bool need_alpha) {
  const auto p = prepare::prepare_interpolate_backward<CudaDevice>(grad_in, real_in, fake_in, alpha_in, need_real,
                                                                   need_fake, need_alpha);
  if (!p.any) return {p.dreal, p.dfake, p.dalpha};
  const c10::cuda::CUDAGuard guard(p.grad.device());
  at::Tensor alpha_keep, ws_keep;
  const DeviceVector alpha = device_vector(alpha_in, p.grad, alpha_keep);
  void* ws = need_alpha ? workspace(interpolate_backward_workspace_bytes(p.B, p.M, dtype_code(p.grad)), p.grad,
                                    ws_keep)
                        : nullptr;
  C10_CUDA_CHECK(cuda::interpolate_backward(p.grad.const_data_ptr(), cptr(p.real), cptr(p.fake), alpha, p.B, p.M,
                                            dtype_code(p.grad), ptr_if(p.dreal, need_real),
                                            ptr_if(p.dfake, need_fake), ptr_if(p.dalpha, need_alpha), ws,
                                            current_stream()));
  return {p.dreal, p.dfake, p.dalpha};
}

// ------------------------------------------------------------------------ grad_norm_penalty
std::tuple<at::Tensor, at::Tensor> grad_norm_penalty_forward(const at::Tensor& grads_in, double center,
                                                             bool one_sided) {
  const auto p = prepare::prepare_penalty<CudaDevice>(grads_in);  // fp64 norms (docs/design.md §6)
  const c10::cuda::CUDAGuard guard(p.grads.device());
  at::Tensor ws_keep;
  void* ws = workspace(grad_norm_penalty_workspace_bytes(p.B, p.M, dtype_code(p.grads)), p.grads, ws_keep);
  C10_CUDA_CHECK(cuda::grad_norm_penalty_forward(p.grads.const_data_ptr(), p.B, p.M, dtype_code(p.grads), center,
                                                 one_sided, p.loss.mutable_data_ptr(), p.norms.mutable_data_ptr(), ws,
                                                 current_stream()));
  return {p.loss, p.norms};
}

at::Tensor grad_norm_penalty(const at::Tensor& grads, double center, bool one_sided) {
  return std::get<0>(grad_norm_penalty_forward(grads, center, one_sided));
}

at::Tensor grad_norm_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grads_in, const at::Tensor& norms,
                                      double center, bool one_sided) {
  const auto p = prepare::prepare_penalty_backward<CudaDevice>(grad_out, grads_in, norms);
  const c10::cuda::CUDAGuard guard(p.grads.device());
  at::Tensor gout_keep, norms_keep;
  const DeviceVector gout = device_vector(grad_out, p.grads, gout_keep);
  const DeviceVector nv = device_vector(norms, p.grads, norms_keep);
  C10_CUDA_CHECK(cuda::grad_norm_penalty_backward(gout, p.grads.const_data_ptr(), nv, p.B, p.M, dtype_code(p.grads),
                                                  center, one_sided, p.dg.mutable_data_ptr(), current_stream()));
  return p.dg;
}

// --------------------------------------------------------------------- reconstruction_error
at::Tensor reconstruction_error(const at::Tensor& x_in, const at::Tensor& recon_in, int64_t p_in) {
  const auto p = prepare::prepare_reconstruction<CudaDevice>(x_in, recon_in, p_in);
  const c10::cuda::CUDAGuard guard(p.x.device());
  at::Tensor ws_keep;
  void* ws = workspace(reconstruction_error_workspace_bytes(p.B, p.M, dtype_code(p.x)), p.x, ws_keep);
  C10_CUDA_CHECK(cuda::reconstruction_error_forward(p.x.const_data_ptr(), p.recon.const_data_ptr(), p.B, p.M,
                                                    dtype_code(p.x), static_cast<int>(p_in), p.out.mutable_data_ptr(),
                                                    ws, current_stream()));
  return p.out;
}

std::tuple<at::Tensor, at::Tensor> reconstruction_error_backward(const at::Tensor& grad_out, const at::Tensor& x_in,
                                                                 const at::Tensor& recon_in, int64_t p_in, bool need_x,
                                                                 bool need_recon) {
  const auto p =
      prepare::prepare_reconstruction_backward<CudaDevice>(grad_out, x_in, recon_in, p_in, need_x, need_recon);
  if (!p.any) return {p.dx, p.drecon};
  const c10::cuda::CUDAGuard guard(p.x.device());
  at::Tensor gout_keep;
  const DeviceVector gout = device_vector(grad_out, p.x, gout_keep);
  C10_CUDA_CHECK(cuda::reconstruction_error_backward(gout, p.x.const_data_ptr(), p.recon.const_data_ptr(), p.B, p.M,
                                                     dtype_code(p.x), static_cast<int>(p_in), ptr_if(p.dx, need_x),
                                                     ptr_if(p.drecon, need_recon), current_stream()));
  return {p.dx, p.drecon};
}

// ------------------------------------------------------------------------- adversarial_loss
at::Tensor adversarial_loss(const std::optional<at::Tensor>& real_in, const std::optional<at::Tensor>& fake_in,
                            c10::string_view kind, double real_target, double fake_target, double margin) {
  const auto p = prepare::prepare_adversarial<CudaDevice>(real_in, fake_in, kind);
  const c10::cuda::CUDAGuard guard(p.any.device());
  const int64_t n_real = p.real.defined() ? p.real.numel() : 0, n_fake = p.fake.defined() ? p.fake.numel() : 0;
  at::Tensor ws_keep;
  void* ws = workspace(adversarial_loss_workspace_bytes(n_real, n_fake, dtype_code(p.any)), p.any, ws_keep);
  C10_CUDA_CHECK(cuda::adversarial_loss_forward(cptr(p.real), n_real, cptr(p.fake), n_fake, dtype_code(p.any), p.kind,
                                                real_target, fake_target, margin, p.loss.mutable_data_ptr(), ws,
                                                current_stream()));
  return p.loss;
}

std::tuple<at::Tensor, at::Tensor> adversarial_loss_backward(const at::Tensor& grad_out,
                                                             const std::optional<at::Tensor>& real_in,
                                                             const std::optional<at::Tensor>& fake_in,
                                                             c10::string_view kind, double real_target,
                                                             double fake_target, double margin, bool need_real,
                                                             bool need_fake) {
  const auto p =
      prepare::prepare_adversarial_backward<CudaDevice>(grad_out, real_in, fake_in, kind, need_real, need_fake);
  if (!need_real && !need_fake) return {p.dreal, p.dfake};
  const c10::cuda::CUDAGuard guard(p.any.device());
  at::Tensor gout_keep;
  const DeviceVector gout = device_vector(grad_out, p.any, gout_keep);
  C10_CUDA_CHECK(cuda::adversarial_loss_backward(
      gout, cptr(p.real), need_real ? p.real.numel() : 0, cptr(p.fake), need_fake ? p.fake.numel() : 0,
      dtype_code(p.any), p.kind, real_target, fake_target, margin, ptr_if(p.dreal, need_real),
      ptr_if(p.dfake, need_fake), current_stream()));
  return {p.dreal, p.dfake};
}

}  // namespace ops

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("interpolate", &ops::interpolate);
  m.impl("interpolate_backward", &ops::interpolate_backward);
  m.impl("grad_norm_penalty", &ops::grad_norm_penalty);
  m.impl("grad_norm_penalty_forward", &ops::grad_norm_penalty_forward);
  m.impl("grad_norm_penalty_backward", &ops::grad_norm_penalty_backward);
  m.impl("reconstruction_error", &ops::reconstruction_error);
  m.impl("reconstruction_error_backward", &ops::reconstruction_error_backward);
  m.impl("adversarial_loss", &ops::adversarial_loss);
  m.impl("adversarial_loss_backward", &ops::adversarial_loss_backward);
}

}  // namespace cuda
}  // namespace fastgan
