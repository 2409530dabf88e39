// fastgan: each operator's preparation — argument checks, memory layout, output allocation —
// written once for every device.
//
// The CPU kernels (csrc/cpu/<op>.cpp) and the CUDA glue (csrc/cuda/bindings.cpp) both call
// prepare_<op>(Dev{}, ...) and then only compute (CPU) or launch (CUDA). `Dev` is the device's
// policy: a struct with a static `check_float(tensor, name)` that checks the dtype and the device
// of one tensor (CpuDevice in csrc/cpu/common.h, CudaDevice in csrc/cuda/bindings.cpp); every
// other check, the layout rule and the outputs' shapes, dtypes and strides are the same on every
// device and live here (mirrored by the fake impls, fastgan/ops/_layout.py). The functions only
// read their arguments; they may allocate (outputs, contiguous copies) on the inputs' device.
#pragma once

#include "terms.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fastgan {
namespace prepare {

// ------------------------------------------------------------------------------ layout rule
// True when every sample is one contiguous block of M = numel / B elements in memory (the
// batch is the outermost dimension and the tensor is dense): contiguous, channels-last and other
// dense permutations of the non-batch dimensions qualify. Such tensors are read in memory order
// without a copy.
inline bool sample_blocked(const at::Tensor& t) {
  if (t.dim() == 0 || t.numel() == 0) return false;
  if (!t.is_non_overlapping_and_dense()) return false;
  const int64_t B = t.size(0);
  return B == 1 || t.stride(0) == t.numel() / B;
}

// Tensors that are read element by element together must share one memory order. If they are all
// sample-blocked with identical strides they are used as they are; otherwise every one of them is
// made contiguous (a copy only for those that are not contiguous already).
inline std::vector<at::Tensor> common_layout(std::vector<at::Tensor> ts) {
  bool same = sample_blocked(ts[0]);
  for (size_t i = 1; same && i < ts.size(); ++i) {
    same = sample_blocked(ts[i]) && ts[i].strides() == ts[0].strides();
  }
  if (!same) {
    for (auto& t : ts) t = t.contiguous();
  }
  return ts;
}

// The tensor itself when sample-blocked, else a contiguous copy.
inline at::Tensor blocked(const at::Tensor& t) { return sample_blocked(t) ? t : t.contiguous(); }

// A dense tensor whose elements fill [data_ptr, data_ptr + numel) (any order), for reductions
// over all elements; copies only a tensor that is not dense.
inline at::Tensor dense(const at::Tensor& t) { return t.is_non_overlapping_and_dense() ? t : t.contiguous(); }

// Placeholder for a gradient that was not asked for (the schemas return tensors, never None).
inline at::Tensor not_needed(const at::Tensor& like) { return at::empty({0}, like.options()); }

// grad_norm_penalty's per-sample sums of squares, norms and backward scale are fp64 for every
// input dtype, on every device (the reason: docs/design.md §6). The reference and the Triton
// kernels use the same dtype, fastgan.ops.grad_norm_penalty.NORM_DTYPE.
constexpr at::ScalarType kNormsDtype = at::kDouble;

// ----------------------------------------------------------------------------------- checks
template <typename Dev>
void check_batched(const at::Tensor& t, const char* name) {
  Dev::check_float(t, name);
  TORCH_CHECK(t.dim() >= 1 && t.size(0) > 0 && t.numel() > 0, "fastgan: ", name,
              " must be a non-empty tensor with the batch first, got shape ", t.sizes());
}

inline void check_same(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn) {
  TORCH_CHECK(a.sizes() == b.sizes(), "fastgan: ", bn, " has shape ", b.sizes(), " but ", an, " has shape ",
              a.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "fastgan: ", bn, " has dtype ", b.scalar_type(), " but ", an,
              " has dtype ", a.scalar_type());
}

inline void check_device(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), "fastgan: ", name, " is on ", t.device(), " but ", ref_name, " is on ",
              ref.device());
}

// `other` is read beside `ref`: a tensor of the device's kind, the same shape, dtype and device.
// The shape and dtype come first, so that the CPU kernels report what they always reported.
template <typename Dev>
void check_like(const at::Tensor& ref, const char* ref_name, const at::Tensor& other, const char* name) {
  check_same(ref, ref_name, other, name);
  Dev::check_float(other, name);
  check_device(other, name, ref, ref_name);
}

template <typename Dev>
void check_alpha(const at::Tensor& alpha, const at::Tensor& real) {
  Dev::check_float(alpha, "alpha");
  check_device(alpha, "alpha", real, "real");
  TORCH_CHECK(alpha.dim() == 1 && alpha.size(0) == real.size(0), "fastgan: alpha must have shape (B,) = (",
              real.size(0), ",), got ", alpha.sizes());
  TORCH_CHECK(alpha.scalar_type() == real.scalar_type(), "fastgan: alpha has dtype ", alpha.scalar_type(),
              " but real has dtype ", real.scalar_type());
}

inline void check_p(int64_t p) { TORCH_CHECK(p == 1 || p == 2, "fastgan: p must be 1 or 2, got ", p); }

// The terms::Kind code of a kind name (terms::kKindNames), or an error listing the names.
inline int kind_code(c10::string_view kind) {
  std::string names;
  for (int k = 0; k < terms::kNumKinds; ++k) {
    if (kind == terms::kKindNames[k]) return k;
    names += (k ? ", " : "") + std::string(terms::kKindNames[k]);
  }
  TORCH_CHECK(false, "fastgan: kind must be one of ", names, ", got '", std::string(kind), "'");
  return -1;  // not reached
}

// real and/or fake of adversarial_loss: at least one, each batched, the same dtype and device.
template <typename Dev>
void check_sides(const std::optional<at::Tensor>& real, const std::optional<at::Tensor>& fake) {
  TORCH_CHECK(real.has_value() || fake.has_value(), "fastgan: real and fake cannot both be None");
  if (real) check_batched<Dev>(*real, "real");
  if (fake) check_batched<Dev>(*fake, "fake");
  if (real && fake) {
    TORCH_CHECK(real->scalar_type() == fake->scalar_type(), "fastgan: fake has dtype ", fake->scalar_type(),
                " but real has dtype ", real->scalar_type());
    check_device(*fake, "fake", *real, "real");
  }
}

// ------------------------------------------------------------------------------ interpolate
// x̂ = fake + alpha_b (real − fake): real and fake in their common layout, out in that layout.
struct Interpolate {
  at::Tensor real, fake, out;
  int64_t B, M;
};

template <typename Dev>
Interpolate prepare_interpolate(const at::Tensor& real_in, const at::Tensor& fake_in, const at::Tensor& alpha) {
  check_batched<Dev>(real_in, "real");
  Dev::check_float(fake_in, "fake");
  check_same(real_in, "real", fake_in, "fake");
  check_device(fake_in, "fake", real_in, "real");
  check_alpha<Dev>(alpha, real_in);
  const auto ts = common_layout({real_in, fake_in});
  const int64_t B = ts[0].size(0);
  return {ts[0], ts[1], at::empty_like(ts[0]), B, ts[0].numel() / B};
}

// The backward: grad (and real, fake only when alpha's gradient is asked for: they are read for
// nothing else) in their common layout; the gradients asked for, placeholders for the others.
struct InterpolateBackward {
  at::Tensor grad, real, fake, dreal, dfake, dalpha;
  int64_t B, M;
  bool any;  // is any gradient asked for
};

template <typename Dev>
InterpolateBackward prepare_interpolate_backward(const at::Tensor& grad_in, const at::Tensor& real_in,
                                                 const at::Tensor& fake_in, const at::Tensor& alpha, bool need_real,
                                                 bool need_fake, bool need_alpha) {
  check_batched<Dev>(real_in, "real");
  check_like<Dev>(real_in, "real", fake_in, "fake");
  check_like<Dev>(real_in, "real", grad_in, "grad");
  check_alpha<Dev>(alpha, real_in);
  const auto ts = need_alpha ? common_layout({grad_in, real_in, fake_in}) : common_layout({grad_in});
  const at::Tensor& grad = ts[0];
  const int64_t B = grad.size(0);
  return {grad,
          need_alpha ? ts[1] : at::Tensor(),
          need_alpha ? ts[2] : at::Tensor(),
          need_real ? at::empty_like(grad) : not_needed(grad),
          need_fake ? at::empty_like(grad) : not_needed(grad),
          need_alpha ? at::empty({B}, alpha.options()) : not_needed(grad),
          B,
          grad.numel() / B,
          need_real || need_fake || need_alpha};
}

// ------------------------------------------------------------------------ grad_norm_penalty
// The gradients sample-blocked; loss (a scalar of their dtype) and fp64 norms of shape (B,).
struct Penalty {
  at::Tensor grads, loss, norms;
  int64_t B, M;
};

template <typename Dev>
Penalty prepare_penalty(const at::Tensor& grads_in) {
  check_batched<Dev>(grads_in, "grads");
  const at::Tensor grads = blocked(grads_in);
  const int64_t B = grads.size(0);
  return {grads, at::empty({}, grads.options()), at::empty({B}, grads.options().dtype(kNormsDtype)), B,
          grads.numel() / B};
}

// The backward: dg in the layout of the gradients read.
struct PenaltyBackward {
  at::Tensor grads, dg;
  int64_t B, M;
};

template <typename Dev>
PenaltyBackward prepare_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grads_in,
                                         const at::Tensor& norms) {
  check_batched<Dev>(grads_in, "grads");
  TORCH_CHECK(grad_out.numel() == 1, "fastgan: grad_norm_penalty_backward expects a scalar grad_out");
  TORCH_CHECK(norms.dim() == 1 && norms.size(0) == grads_in.size(0) && norms.scalar_type() == kNormsDtype,
              "fastgan: norms must have shape (B,) and dtype float64");
  check_device(norms, "norms", grads_in, "grads");
  const at::Tensor grads = blocked(grads_in);
  const int64_t B = grads.size(0);
  return {grads, at::empty_like(grads), B, grads.numel() / B};
}

// --------------------------------------------------------------------- reconstruction_error
// x and recon in their common layout; out of shape (B,) for the forward, dx and drecon (or
// placeholders) in that layout for the backward.
struct Reconstruction {
  at::Tensor x, recon, out, dx, drecon;
  int64_t B, M;
  bool any;  // backward: is any gradient asked for
};

template <typename Dev>
Reconstruction prepare_reconstruction(const at::Tensor& x_in, const at::Tensor& recon_in, int64_t p) {
  check_batched<Dev>(x_in, "x");
  Dev::check_float(recon_in, "recon");
  check_same(x_in, "x", recon_in, "recon");
  check_device(recon_in, "recon", x_in, "x");
  check_p(p);
  const auto ts = common_layout({x_in, recon_in});
  const int64_t B = ts[0].size(0);
  return {ts[0], ts[1], at::empty({B}, ts[0].options()), at::Tensor(), at::Tensor(), B, ts[0].numel() / B, true};
}

template <typename Dev>
Reconstruction prepare_reconstruction_backward(const at::Tensor& grad_out, const at::Tensor& x_in,
                                               const at::Tensor& recon_in, int64_t p, bool need_x, bool need_recon) {
  check_batched<Dev>(x_in, "x");
  check_like<Dev>(x_in, "x", recon_in, "recon");
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == x_in.size(0),
              "fastgan: reconstruction_error_backward expects grad_out of shape (B,)");
  check_p(p);
  const auto ts = common_layout({x_in, recon_in});
  const at::Tensor& x = ts[0];
  const int64_t B = x.size(0);
  return {x,
          ts[1],
          at::Tensor(),
          need_x ? at::empty_like(x) : not_needed(x),
          need_recon ? at::empty_like(x) : not_needed(x),
          B,
          x.numel() / B,
          need_x || need_recon};
}

// ------------------------------------------------------------------------- adversarial_loss
// Each side present (dense; undefined when absent or, in the backward, not asked for), the kind's
// code, the loss (a scalar of the inputs' dtype) or the gradients (placeholders where not asked).
struct Adversarial {
  at::Tensor any, real, fake, loss, dreal, dfake;
  int kind;
};

template <typename Dev>
Adversarial prepare_adversarial(const std::optional<at::Tensor>& real_in, const std::optional<at::Tensor>& fake_in,
                                c10::string_view kind) {
  check_sides<Dev>(real_in, fake_in);
  const int k = kind_code(kind);
  const at::Tensor& any = real_in ? *real_in : *fake_in;
  return {any, real_in ? dense(*real_in) : at::Tensor(), fake_in ? dense(*fake_in) : at::Tensor(),
          at::empty({}, any.options()), at::Tensor(), at::Tensor(), k};
}

template <typename Dev>
Adversarial prepare_adversarial_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& real_in,
                                         const std::optional<at::Tensor>& fake_in, c10::string_view kind,
                                         bool need_real, bool need_fake) {
  check_sides<Dev>(real_in, fake_in);
  TORCH_CHECK(grad_out.numel() == 1, "fastgan: adversarial_loss_backward expects a scalar grad_out");
  TORCH_CHECK(!need_real || real_in.has_value(), "fastgan: need_real without real");
  TORCH_CHECK(!need_fake || fake_in.has_value(), "fastgan: need_fake without fake");
  const int k = kind_code(kind);
  const at::Tensor& any = real_in ? *real_in : *fake_in;
  const at::Tensor real = need_real ? dense(*real_in) : at::Tensor();
  const at::Tensor fake = need_fake ? dense(*fake_in) : at::Tensor();
  return {any,
          real,
          fake,
          at::Tensor(),
          need_real ? at::empty_like(real) : not_needed(any),
          need_fake ? at::empty_like(fake) : not_needed(any),
          k};
}

}  // namespace prepare
}  // namespace fastgan
