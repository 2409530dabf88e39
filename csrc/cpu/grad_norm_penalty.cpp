// grad_norm_penalty on the CPU: mean_b φ(‖g_b‖₂ − center).
//
// Forward reads the gradients once (per-chunk sums of squares, combined per row in a fixed
// order); backward reads them once and writes dg once. Any sample-blocked layout (contiguous,
// channels-last, …) is read in memory order; other layouts are made contiguous first.
#include "common.h"
#include "loops.h"

#include <torch/library.h>

#include <cmath>
#include <tuple>

namespace fastgan {
namespace cpu {

// The per-sample sums of squares, the norms and the backward's scale are fp64 for every input
// dtype (prepare::kNormsDtype; why: docs/design.md §6).

std::tuple<at::Tensor, at::Tensor> grad_norm_penalty_forward(const at::Tensor& grads_in, double center,
                                                             bool one_sided) {
  const auto p = prepare::prepare_penalty<CpuDevice>(grads_in);
  const int64_t B = p.B, M = p.M, C = chunks_per_row(M);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grads.scalar_type(), "grad_norm_penalty_forward", [&] {
    using acc_t = double;
    const scalar_t* g = p.grads.const_data_ptr<scalar_t>();
    std::vector<acc_t> partial(B * C);
    for_each_chunk(B, M, [&](int64_t b, int64_t c, int64_t begin, int64_t end) {
      partial[b * C + c] = loops::sum_squares<scalar_t, acc_t>(g + b * M + begin, end - begin);
    });
    acc_t* n = p.norms.mutable_data_ptr<acc_t>();
    acc_t total = acc_t(0);
    for (int64_t b = 0; b < B; ++b) {
      n[b] = std::sqrt(row_total(partial, b, C));
      total += terms::penalty_phi(n[b] - static_cast<acc_t>(center), one_sided);
    }
    *p.loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(total / static_cast<acc_t>(B));
  });
  return {p.loss, p.norms};
}

at::Tensor grad_norm_penalty(const at::Tensor& grads, double center, bool one_sided) {
  return std::get<0>(grad_norm_penalty_forward(grads, center, one_sided));
}

at::Tensor grad_norm_penalty_backward(const at::Tensor& grad_out, const at::Tensor& grads_in, const at::Tensor& norms,
                                      double center, bool one_sided) {
  const auto p = prepare::prepare_penalty_backward<CpuDevice>(grad_out, grads_in, norms);
  const int64_t B = p.B, M = p.M;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grads.scalar_type(), "grad_norm_penalty_backward", [&] {
    using acc_t = double;
    const acc_t gout = grad_out.to(norms.scalar_type()).item<acc_t>();
    const at::Tensor nc = norms.contiguous();
    const acc_t* n = nc.const_data_ptr<acc_t>();
    std::vector<acc_t> scale(B);
    for (int64_t b = 0; b < B; ++b) {
      scale[b] = terms::penalty_grad_scale(n[b], static_cast<acc_t>(center), one_sided, gout, static_cast<acc_t>(B));
    }
    const scalar_t* g = p.grads.const_data_ptr<scalar_t>();
    scalar_t* out = p.dg.mutable_data_ptr<scalar_t>();
    for_each_chunk(B, M, [&](int64_t b, int64_t, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      loops::scale<scalar_t, acc_t>(g + o, out + o, scale[b], end - begin);
    });
  });
  return p.dg;
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("grad_norm_penalty", &grad_norm_penalty);
  m.impl("grad_norm_penalty_forward", &grad_norm_penalty_forward);
  m.impl("grad_norm_penalty_backward", &grad_norm_penalty_backward);
}

}  // namespace cpu
}  // namespace fastgan
