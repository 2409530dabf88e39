// reconstruction_error on the CPU: per-sample mean_i |x − recon|^p, p ∈ {1, 2}, shape (B,).
//
// Forward reads both inputs once; backward reads both once and writes only the gradients asked
// for. x and recon are read in memory order when they share a sample-blocked layout; otherwise
// both are made contiguous.
#include "common.h"
#include "loops.h"
#include "../common/terms.h"

#include <torch/library.h>

#include <tuple>

namespace fastgan {
namespace cpu {

at::Tensor reconstruction_error(const at::Tensor& x_in, const at::Tensor& recon_in, int64_t p) {
  check_batched(x_in, "x");
  check_float(recon_in, "recon");
  check_same(x_in, "x", recon_in, "recon");
  TORCH_CHECK(p == 1 || p == 2, "fastgan: p must be 1 or 2, got ", p);
  const auto ts = common_layout({x_in, recon_in});
  const at::Tensor &x = ts[0], &r = ts[1];
  const int64_t B = x.size(0), M = x.numel() / B, C = chunks_per_row(M);
  at::Tensor out = at::empty({B}, x.options());
  const int ip = static_cast<int>(p);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "reconstruction_error", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    std::vector<acc_t> partial(B * C);
    for_each_chunk(B, M, [&](int64_t b, int64_t c, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      partial[b * C + c] = loops::sum_abs_pow_diff<scalar_t, acc_t>(xp + o, rp + o, end - begin, ip);
    });
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) o[b] = static_cast<scalar_t>(row_total(partial, b, C) / static_cast<acc_t>(M));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> reconstruction_error_backward(const at::Tensor& grad_out, const at::Tensor& x_in,
                                                                 const at::Tensor& recon_in, int64_t p, bool need_x,
                                                                 bool need_recon) {
  check_batched(x_in, "x");
  check_same(x_in, "x", recon_in, "recon");
  TORCH_CHECK(grad_out.dim() == 1 && grad_out.size(0) == x_in.size(0),
              "fastgan: reconstruction_error_backward expects grad_out of shape (B,)");
  TORCH_CHECK(p == 1 || p == 2, "fastgan: p must be 1 or 2, got ", p);
  const auto ts = common_layout({x_in, recon_in});
  const at::Tensor &x = ts[0], &r = ts[1];
  const int64_t B = x.size(0), M = x.numel() / B;
  at::Tensor dx = need_x ? at::empty_like(x) : not_needed(x);
  at::Tensor dr = need_recon ? at::empty_like(x) : not_needed(x);
  if (!need_x && !need_recon) return {dx, dr};
  const int ip = static_cast<int>(p);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "reconstruction_error_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor go = grad_out.to(x.options().dtype(c10::CppTypeToScalarType<acc_t>::value)).contiguous();
    const acc_t* gp = go.const_data_ptr<acc_t>();
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* rp = r.const_data_ptr<scalar_t>();
    scalar_t* dxp = need_x ? dx.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* drp = need_recon ? dr.mutable_data_ptr<scalar_t>() : nullptr;
    const acc_t inv_m = acc_t(1) / static_cast<acc_t>(M);
    for_each_chunk(B, M, [&](int64_t b, int64_t, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      loops::rec_grad<scalar_t, acc_t>(xp + o, rp + o, dxp ? dxp + o : nullptr, drp ? drp + o : nullptr, gp[b] * inv_m,
                                       end - begin, ip);
    });
  });
  return {dx, dr};
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("reconstruction_error", &reconstruction_error);
  m.impl("reconstruction_error_backward", &reconstruction_error_backward);
}

}  // namespace cpu
}  // namespace fastgan
