// fastgan: the CUDA kernels (csrc/cuda/*.cu, declared in launchers.h) registered as the CUDA
// implementations of the operators declared in csrc/fastgan.cpp.
//
// This is the only CUDA file that sees torch. For every operator it checks the arguments as the
// CPU kernel does (csrc/cpu/<op>.cpp), chooses the same memory layout (csrc/cpu/common.h:
// sample-blocked tensors — contiguous, channels-last, … — are read as they are, anything else is
// made contiguous), allocates outputs with exactly the CPU kernel's shapes, dtypes and strides
// (mirrored by the fake impls, fastgan/ops/_layout.py) and a workspace from torch's caching
// allocator, and launches on torch's current stream for the tensors' device under a device guard.
// Nothing here waits for the device: grad_out, norms and alpha are handed to the kernels by
// pointer, never read on the host.
#include "launchers.h"

#include "../cpu/common.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace fastgan {
namespace cpu {
int kind_code(c10::string_view kind);  // csrc/cpu/adversarial_loss.cpp: the kind's terms::Kind code, or an error
}  // namespace cpu

namespace cuda {
// The torch-facing functions have the operators' names; the launchers they call (launchers.h,
// namespace fastgan::cuda) are named *_forward / *_backward too, hence their own namespace.
namespace ops {

bool supported(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

DType dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    default: return DType::kFloat32;
  }
}

at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cuda(), "fastgan: the cuda kernels take CUDA tensors, ", name, " is on ", t.device());
  TORCH_CHECK(supported(t.scalar_type()), "fastgan: ", name,
              " must be a float32, float64, float16 or bfloat16 tensor, got ", t.scalar_type());
}

void check_batched(const at::Tensor& t, const char* name) {
  check_float(t, name);
  TORCH_CHECK(t.dim() >= 1 && t.size(0) > 0 && t.numel() > 0, "fastgan: ", name,
              " must be a non-empty tensor with the batch first, got shape ", t.sizes());
}

void check_device(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), "fastgan: ", name, " is on ", t.device(), " but ", ref_name, " is on ",
              ref.device());
}

void check_alpha(const at::Tensor& alpha, const at::Tensor& real) {
  check_float(alpha, "alpha");
  check_device(alpha, "alpha", real, "real");
  TORCH_CHECK(alpha.dim() == 1 && alpha.size(0) == real.size(0), "fastgan: alpha must have shape (B,) = (",
              real.size(0), ",), got ", alpha.sizes());
  TORCH_CHECK(alpha.scalar_type() == real.scalar_type(), "fastgan: alpha has dtype ", alpha.scalar_type(),
              " but real has dtype ", real.scalar_type());
}

// A vector the kernels read on the device (grad_out, norms, alpha): moved to the kernels' device
// and, in an unsupported dtype, converted to the accumulation dtype `acc` (what the CPU kernels
// convert grad_out to) — both without a host sync for a CUDA tensor. Element i is read at
// data[i · stride]; a scalar (numel 1) is read at its only element. `keep` holds the storage
// until the launch is enqueued (the caching allocator orders its reuse after the kernel).
DeviceVector device_vector(const at::Tensor& t, const at::Device& device, at::ScalarType acc, at::Tensor& keep) {
  keep = t;
  if (keep.device() != device) keep = keep.to(device);
  if (!supported(keep.scalar_type())) keep = keep.to(acc);
  const int64_t stride = keep.dim() == 1 ? keep.stride(0) : 0;
  return {keep.const_data_ptr(), dtype_code(keep.scalar_type()), stride};
}

// Device memory for a launcher's workspace (null when it needs none).
void* workspace(std::size_t bytes, const at::Tensor& like, at::Tensor& keep) {
  if (bytes == 0) return nullptr;
  keep = at::empty({static_cast<int64_t>(bytes)}, like.options().dtype(at::kByte));
  return keep.mutable_data_ptr();
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

void* ptr_if(at::Tensor& t, bool needed) { return needed ? t.mutable_data_ptr() : nullptr; }

// ------------------------------------------------------------------------------ interpolate
at::Tensor interpolate(const at::Tensor& real_in, const at::Tensor& fake_in, const at::Tensor& alpha_in) {
  check_batched(real_in, "real");
  check_float(fake_in, "fake");
  cpu::check_same(real_in, "real", fake_in, "fake");
  check_device(fake_in, "fake", real_in, "real");
  check_alpha(alpha_in, real_in);
  const c10::cuda::CUDAGuard guard(real_in.device());
  const auto ts = cpu::common_layout({real_in, fake_in});
  const at::Tensor &real = ts[0], &fake = ts[1];
  const int64_t B = real.size(0), M = real.numel() / B;
  at::Tensor out = at::empty_like(real);
  at::Tensor alpha_keep;
  const DeviceVector alpha = device_vector(alpha_in, real.device(), acc_dtype(real.scalar_type()), alpha_keep);
  C10_CUDA_CHECK(interpolate_forward(real.const_data_ptr(), fake.const_data_ptr(), alpha, B, M,
                                     dtype_code(real.scalar_type()), out.mutable_data_ptr(), current_stream()));
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> interpolate_backward(const at::Tensor& grad_in,
                                                                    const at::Tensor& real_in,
                                                                    const at::Tensor& fake_in,
                                                                    const at::Tensor& alpha_in, bool need_real,
                                                                    bool need_fake, bool need_alpha) {
  check_batched(real_in, "real");
  check_float(fake_in, "fake");
  check_float(grad_in, "grad");
  cpu::check_same(real_in, "real", fake_in, "fake");
  cpu::check_same(real_in, "real", grad_in, "grad");
  check_device(fake_in, "fake", real_in, "real");
  check_device(grad_in, "grad", real_in, "real");
  check_alpha(alpha_in, real_in);
  const c10::cuda::CUDAGuard guard(real_in.device());
  // real and fake are read only for alpha's gradient
  const auto ts = need_alpha ? cpu::common_layout({grad_in, real_in, fake_in}) : cpu::common_layout({grad_in});
  const at::Tensor& grad = ts[0];
  const int64_t B = grad.size(0), M = grad.numel() / B;
  at::Tensor dreal = need_real ? at::empty_like(grad) : cpu::not_needed(grad);
  at::Tensor dfake = need_fake ? at::empty_like(grad) : cpu::not_needed(grad);
  at::Tensor dalpha = need_alpha ? at::empty({B}, alpha_in.options()) : cpu::not_needed(grad);
  if (!need_real && !need_fake && !need_alpha) return {dreal, dfake, dalpha};
  const DType dt = dtype_code(grad.scalar_type());
  at::Tensor alpha_keep, ws_keep;
  const DeviceVector alpha = device_vector(alpha_in, grad.device(), acc_dtype(grad.scalar_type()), alpha_keep);
  void* ws = need_alpha ? workspace(interpolate_backward_workspace_bytes(B, M, dt), grad, ws_keep) : nullptr;
  C10_CUDA_CHECK(cuda::interpolate_backward(
      grad.const_data_ptr(), need_alpha ? ts[1].const_data_ptr() : nullptr,
      need_alpha ? ts[2].const_data_ptr() : nullptr, alpha, B, M, dt, ptr_if(dreal, need_real),
      ptr_if(dfake, need_fake), ptr_if(dalpha, need_alpha), ws, current_stream()));
  return {dreal, dfake, dalpha};
}

// ------------------------------------------------------------------------ grad_norm_penalty
std::tuple<at::Tensor, at::Tensor> grad_norm_penalty_forward(const at::Tensor& grads_in, double center,
                                                             bool one_sided) {
  check_batched(grads_in, "grads");
  const c10::cuda::CUDAGuard guard(grads_in.device());
  const at::Tensor grads = cpu::sample_blocked(grads_in) ? grads_in : grads_in.contiguous();
  const int64_t B = grads.size(0), M = grads.numel() / B;
  const DType dt = dtype_code(grads.scalar_type());
  // fp64 norms for every input dtype (docs/design.md §6)
  at::Tensor norms = at::empty({B}, grads.options().dtype(cpu::kNormsDtype));
  at::Tensor loss = at::empty({}, grads.options());
  at::Tensor ws_keep;
  void* ws = workspace(grad_norm_penalty_workspace_bytes(B, M, dt), grads, ws_keep);
  C10_CUDA_CHECK(cuda::grad_norm_penalty_forward(grads.const_data_ptr(), B, M, dt, center, one_sided,
                                                 loss.mutable_data_ptr(), norms.mutable_data_ptr(), ws,
                                                 current_stream()));
  return {loss, norms};
}

at::Tensor grad_norm_penalty(const at::Tensor& grads, double center, bool one_sided) {
  return std::get<0>(grad_norm_penalty_forward(grads, center, one_sided));
}

at::Tensor grad_norm_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grads_in, const at::Tensor& norms,
                                      double center, bool one_sided) {
  check_batched(grads_in, "grads");
  cpu::check_penalty_backward(grad_out, norms, grads_in);
  check_device(norms, "norms", grads_in, "grads");
  const c10::cuda::CUDAGuard guard(grads_in.device());
  const at::Tensor grads = cpu::sample_blocked(grads_in) ? grads_in : grads_in.contiguous();
  const int64_t B = grads.size(0), M = grads.numel() / B;
  at::Tensor dg = at::empty_like(grads);  // same layout as the gradients read
  const at::ScalarType acc = acc_dtype(grads.scalar_type());
  at::Tensor gout_keep, norms_keep;
  const DeviceVector gout = device_vector(grad_out, grads.device(), acc, gout_keep);
  const DeviceVector nv = device_vector(norms, grads.device(), acc, norms_keep);
  C10_CUDA_CHECK(cuda::grad_norm_penalty_backward(gout, grads.const_data_ptr(), nv, B, M,
                                                  dtype_code(grads.scalar_type()), center, one_sided,
                                                  dg.mutable_data_ptr(), current_stream()));
  return dg;
}

// --------------------------------------------------------------------- reconstruction_error
void check_p(int64_t p) { TORCH_CHECK(p == 1 || p == 2, "fastgan: p must be 1 or 2, got ", p); }

at::Tensor reconstruction_error(const at::Tensor& x_in, const at::Tensor& recon_in, int64_t p) {
  check_batched(x_in, "x");
  check_float(recon_in, "recon");
  cpu::check_same(x_in, "x", recon_in, "recon");
  check_device(recon_in, "recon", x_in, "x");
  check_p(p);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto ts = cpu::common_layout({x_in, recon_in});
  const at::Tensor &x = ts[0], &r = ts[1];
  const int64_t B = x.size(0), M = x.numel() / B;
  const DType dt = dtype_code(x.scalar_type());
  at::Tensor out = at::empty({B}, x.options());
  at::Tensor ws_keep;
  void* ws = workspace(reconstruction_error_workspace_bytes(B, M, dt), x, ws_keep);
  C10_CUDA_CHECK(cuda::reconstruction_error_forward(x.const_data_ptr(), r.const_data_ptr(), B, M, dt,
                                                    static_cast<int>(p), out.mutable_data_ptr(), ws,
                                                    current_stream()));
  return out;
}

std::tuple<at::Tensor, at::Tensor> reconstruction_error_backward(const at::Tensor& grad_out, const at::Tensor& x_in,
                                                                 const at::Tensor& recon_in, int64_t p, bool need_x,
                                                                 bool need_recon) {
  check_batched(x_in, "x");
  check_float(recon_in, "recon");
  cpu::check_same(x_in, "x", recon_in, "recon");
  check_device(recon_in, "recon", x_in, "x");
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == x_in.size(0),
              "fastgan: reconstruction_error_backward expects grad_out of shape (B,)");
  check_p(p);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto ts = cpu::common_layout({x_in, recon_in});
  const at::Tensor &x = ts[0], &r = ts[1];
  const int64_t B = x.size(0), M = x.numel() / B;
  at::Tensor dx = need_x ? at::empty_like(x) : cpu::not_needed(x);
  at::Tensor dr = need_recon ? at::empty_like(x) : cpu::not_needed(x);
  if (!need_x && !need_recon) return {dx, dr};
  at::Tensor gout_keep;
  const DeviceVector gout = device_vector(grad_out, x.device(), acc_dtype(x.scalar_type()), gout_keep);
  C10_CUDA_CHECK(cuda::reconstruction_error_backward(gout, x.const_data_ptr(), r.const_data_ptr(), B, M,
                                                     dtype_code(x.scalar_type()), static_cast<int>(p),
                                                     ptr_if(dx, need_x), ptr_if(dr, need_recon), current_stream()));
  return {dx, dr};
}

// ------------------------------------------------------------------------- adversarial_loss
at::Tensor adversarial_loss(const std::optional<at::Tensor>& real_in, const std::optional<at::Tensor>& fake_in,
                            c10::string_view kind, double real_target, double fake_target, double margin) {
  cpu::check_sides(real_in, fake_in, check_batched);
  const int k = cpu::kind_code(kind);
  const at::Tensor& any = real_in ? *real_in : *fake_in;
  const c10::cuda::CUDAGuard guard(any.device());
  const at::Tensor real = real_in ? cpu::dense(*real_in) : at::Tensor();
  const at::Tensor fake = fake_in ? cpu::dense(*fake_in) : at::Tensor();
  const int64_t n_real = real_in ? real.numel() : 0, n_fake = fake_in ? fake.numel() : 0;
  const DType dt = dtype_code(any.scalar_type());
  at::Tensor loss = at::empty({}, any.options());
  at::Tensor ws_keep;
  void* ws = workspace(adversarial_loss_workspace_bytes(n_real, n_fake, dt), any, ws_keep);
  C10_CUDA_CHECK(cuda::adversarial_loss_forward(real_in ? real.const_data_ptr() : nullptr, n_real,
                                                fake_in ? fake.const_data_ptr() : nullptr, n_fake, dt, k, real_target,
                                                fake_target, margin, loss.mutable_data_ptr(), ws, current_stream()));
  return loss;
}

std::tuple<at::Tensor, at::Tensor> adversarial_loss_backward(const at::Tensor& grad_out,
                                                             const std::optional<at::Tensor>& real_in,
                                                             const std::optional<at::Tensor>& fake_in,
                                                             c10::string_view kind, double real_target,
                                                             double fake_target, double margin, bool need_real,
                                                             bool need_fake) {
  cpu::check_sides(real_in, fake_in, check_batched);
  cpu::check_adversarial_backward(grad_out, real_in, fake_in, need_real, need_fake);
  const int k = cpu::kind_code(kind);
  const at::Tensor& any = real_in ? *real_in : *fake_in;
  const c10::cuda::CUDAGuard guard(any.device());
  const at::Tensor real = need_real ? cpu::dense(*real_in) : at::Tensor();
  const at::Tensor fake = need_fake ? cpu::dense(*fake_in) : at::Tensor();
  at::Tensor dreal = need_real ? at::empty_like(real) : cpu::not_needed(any);
  at::Tensor dfake = need_fake ? at::empty_like(fake) : cpu::not_needed(any);
  if (!need_real && !need_fake) return {dreal, dfake};
  at::Tensor gout_keep;
  const DeviceVector gout = device_vector(grad_out, any.device(), acc_dtype(any.scalar_type()), gout_keep);
  C10_CUDA_CHECK(cuda::adversarial_loss_backward(
      gout, need_real ? real.const_data_ptr() : nullptr, need_real ? real.numel() : 0,
      need_fake ? fake.const_data_ptr() : nullptr, need_fake ? fake.numel() : 0, dtype_code(any.scalar_type()), k,
      real_target, fake_target, margin, ptr_if(dreal, need_real), ptr_if(dfake, need_fake), current_stream()));
  return {dreal, dfake};
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
