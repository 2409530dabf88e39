// reconstruction_error on the CPU: per-sample mean_i |x − recon|^p, p ∈ {1, 2}, shape (B,).
//
// Forward reads both inputs once; backward reads both once and writes only the gradients asked
// for. x and recon are read in memory order when they share a sample-blocked layout; otherwise
// both are made contiguous.
#include "common.h"
#include "loops.h"

#include <torch/library.h>

#include <tuple>

namespace fastgan {
namespace cpu {

at::Tensor reconstruction_error(const at::Tensor& x_in, const at::Tensor& recon_in, int64_t p_in) {
  const auto p = prepare::prepare_reconstruction<CpuDevice>(x_in, recon_in, p_in);
  const int64_t B = p.B, M = p.M, C = chunks_per_row(M);
  const int ip = static_cast<int>(p_in);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "reconstruction_error", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    const scalar_t* rp = p.recon.const_data_ptr<scalar_t>();
    std::vector<acc_t> partial(B * C);
    for_each_chunk(B, M, [&](int64_t b, int64_t c, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      partial[b * C + c] = loops::sum_abs_pow_diff<scalar_t, acc_t>(xp + o, rp + o, end - begin, ip);
    });
    scalar_t* o = p.out.mutable_data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) o[b] = static_cast<scalar_t>(row_total(partial, b, C) / static_cast<acc_t>(M));
  });
  return p.out;
}

std::tuple<at::Tensor, at::Tensor> reconstruction_error_backward(const at::Tensor& grad_out, const at::Tensor& x_in,
                                                                 const at::Tensor& recon_in, int64_t p_in, bool need_x,
                                                                 bool need_recon) {
  const auto p =
      prepare::prepare_reconstruction_backward<CpuDevice>(grad_out, x_in, recon_in, p_in, need_x, need_recon);
  if (!p.any) return {p.dx, p.drecon};
  const int64_t B = p.B, M = p.M;
  const int ip = static_cast<int>(p_in);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.x.scalar_type(), "reconstruction_error_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor go = grad_out.to(p.x.options().dtype(c10::CppTypeToScalarType<acc_t>::value)).contiguous();
    const acc_t* gp = go.const_data_ptr<acc_t>();
    const scalar_t* xp = p.x.const_data_ptr<scalar_t>();
    const scalar_t* rp = p.recon.const_data_ptr<scalar_t>();
    scalar_t* dxp = need_x ? p.dx.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* drp = need_recon ? p.drecon.mutable_data_ptr<scalar_t>() : nullptr;
    const acc_t inv_m = acc_t(1) / static_cast<acc_t>(M);
    for_each_chunk(B, M, [&](int64_t b, int64_t, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      loops::rec_grad<scalar_t, acc_t>(xp + o, rp + o, dxp ? dxp + o : nullptr, drp ? drp + o : nullptr, gp[b] * inv_m,
                                       end - begin, ip);
    });
  });
  return {p.dx, p.drecon};
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("reconstruction_error", &reconstruction_error);
  m.impl("reconstruction_error_backward", &reconstruction_error_backward);
}

}  // namespace cpu
}  // namespace fastgan
