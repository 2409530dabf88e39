// fastgan CPU kernels: layout checks, the chunked parallel loop and deterministic reductions.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Parallel.h>
#include <ATen/OpMathType.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace fastgan {
namespace cpu {

// Rows (samples) are processed in chunks of kChunk elements, so that a small batch of long rows
// still spreads over every thread. The chunking depends on the sizes only — never on the number
// of threads — and partial sums are combined in a fixed order: results are identical run to
// run and for any thread count.
constexpr int64_t kChunk = 16384;
// Fewer elements than this per task are not worth a thread.
constexpr int64_t kMinElementsPerTask = 32768;

inline int64_t chunks_per_row(int64_t M) { return std::max<int64_t>(1, (M + kChunk - 1) / kChunk); }

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

// A dense tensor whose elements fill [data_ptr, data_ptr + numel) (any order), for reductions
// over all elements; copies only a tensor that is not dense.
inline at::Tensor dense(const at::Tensor& t) { return t.is_non_overlapping_and_dense() ? t : t.contiguous(); }

// Run f(b, c, begin, end) over every chunk [begin, end) of every row b in parallel.
template <typename F>
inline void for_each_chunk(int64_t B, int64_t M, const F& f) {
  const int64_t C = chunks_per_row(M);
  const int64_t per_task = std::min(M, kChunk);
  const int64_t grain = std::max<int64_t>(1, kMinElementsPerTask / std::max<int64_t>(per_task, 1));
  at::parallel_for(0, B * C, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / C, c = t % C;
      const int64_t begin = c * kChunk;
      f(b, c, begin, std::min(M, begin + kChunk));
    }
  });
}

// Per-row totals from per-chunk partial sums, added in chunk order.
template <typename acc_t>
inline acc_t row_total(const std::vector<acc_t>& partial, int64_t b, int64_t C) {
  acc_t s = acc_t(0);
  for (int64_t c = 0; c < C; ++c) s += partial[b * C + c];
  return s;
}

inline void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), "fastgan: ", name, " must be a floating-point tensor, got ",
              t.scalar_type());
  TORCH_CHECK(t.device().is_cpu(), "fastgan: the cpu kernels take CPU tensors, ", name, " is on ", t.device());
}

inline void check_batched(const at::Tensor& t, const char* name) {
  check_float(t, name);
  TORCH_CHECK(t.dim() >= 1 && t.size(0) > 0 && t.numel() > 0, "fastgan: ", name,
              " must be a non-empty tensor with the batch first, got shape ", t.sizes());
}

inline void check_same(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn) {
  TORCH_CHECK(a.sizes() == b.sizes(), "fastgan: ", bn, " has shape ", b.sizes(), " but ", an, " has shape ",
              a.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "fastgan: ", bn, " has dtype ", b.scalar_type(), " but ", an,
              " has dtype ", a.scalar_type());
}

// Checks shared by the cpu kernels and the CUDA glue (csrc/cuda/bindings.cpp); each device
// passes its own check_batched (dtype and device rules).

// real and/or fake of adversarial_loss: at least one, each batched, the same dtype and device.
template <typename CheckBatched>
inline void check_sides(const std::optional<at::Tensor>& real, const std::optional<at::Tensor>& fake,
                        CheckBatched check_batched_tensor) {
  TORCH_CHECK(real.has_value() || fake.has_value(), "fastgan: real and fake cannot both be None");
  if (real) check_batched_tensor(*real, "real");
  if (fake) check_batched_tensor(*fake, "fake");
  if (real && fake) {
    TORCH_CHECK(real->scalar_type() == fake->scalar_type(), "fastgan: fake has dtype ", fake->scalar_type(),
                " but real has dtype ", real->scalar_type());
    TORCH_CHECK(fake->device() == real->device(), "fastgan: fake is on ", fake->device(), " but real is on ",
                real->device());
  }
}

// adversarial_loss_backward's arguments beyond the sides themselves.
inline void check_adversarial_backward(const at::Tensor& grad_out, const std::optional<at::Tensor>& real,
                                       const std::optional<at::Tensor>& fake, bool need_real, bool need_fake) {
  TORCH_CHECK(grad_out.numel() == 1, "fastgan: adversarial_loss_backward expects a scalar grad_out");
  TORCH_CHECK(!need_real || real.has_value(), "fastgan: need_real without real");
  TORCH_CHECK(!need_fake || fake.has_value(), "fastgan: need_fake without fake");
}

// grad_norm_penalty's per-sample sums of squares, norms and backward scale are fp64 for every
// input dtype, on every device (the reason: docs/design.md §6). The reference and the Triton
// kernels use the same dtype, fastgan.ops.grad_norm_penalty.NORM_DTYPE.
constexpr at::ScalarType kNormsDtype = at::kDouble;

// grad_norm_penalty_backward's grad_out and norms, for gradients `grads` (already checked).
inline void check_penalty_backward(const at::Tensor& grad_out, const at::Tensor& norms, const at::Tensor& grads) {
  TORCH_CHECK(grad_out.numel() == 1, "fastgan: grad_norm_penalty_backward expects a scalar grad_out");
  TORCH_CHECK(norms.dim() == 1 && norms.size(0) == grads.size(0) && norms.scalar_type() == kNormsDtype,
              "fastgan: norms must have shape (B,) and dtype float64");
}

// Placeholder for a gradient that was not asked for (the schemas return tensors, never None).
inline at::Tensor not_needed(const at::Tensor& like) { return at::empty({0}, like.options()); }

}  // namespace cpu
}  // namespace fastgan
