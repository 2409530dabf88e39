// interpolate on the CPU: x̂ = fake + alpha_b (real − fake).
//
// Forward reads real and fake once and writes x̂ once, in the layout of real when real and fake
// share a sample-blocked layout (contiguous, channels-last, …), otherwise contiguous. Backward
// reads the incoming gradient (and real, fake only when alpha's gradient is asked for) once and
// writes the gradients asked for.
#include "common.h"
#include "loops.h"

#include <torch/library.h>

#include <tuple>

namespace fastgan {
namespace cpu {

at::Tensor interpolate(const at::Tensor& real_in, const at::Tensor& fake_in, const at::Tensor& alpha_in) {
  const auto p = prepare::prepare_interpolate<CpuDevice>(real_in, fake_in, alpha_in);
  const int64_t B = p.B, M = p.M;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.real.scalar_type(), "interpolate", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor alpha = alpha_in.contiguous();
    const scalar_t* ap = alpha.const_data_ptr<scalar_t>();
    const scalar_t* rp = p.real.const_data_ptr<scalar_t>();
    const scalar_t* fp = p.fake.const_data_ptr<scalar_t>();
    scalar_t* op = p.out.mutable_data_ptr<scalar_t>();
    for_each_chunk(B, M, [&](int64_t b, int64_t, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      loops::lerp<scalar_t, acc_t>(rp + o, fp + o, op + o, static_cast<acc_t>(ap[b]), end - begin);
    });
  });
  return p.out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> interpolate_backward(const at::Tensor& grad_in, const at::Tensor& real_in,
                                                                    const at::Tensor& fake_in, const at::Tensor& alpha_in,
                                                                    bool need_real, bool need_fake, bool need_alpha) {
  const auto p = prepare::prepare_interpolate_backward<CpuDevice>(grad_in, real_in, fake_in, alpha_in, need_real,
                                                                  need_fake, need_alpha);
  if (!p.any) return {p.dreal, p.dfake, p.dalpha};
  const int64_t B = p.B, M = p.M, C = chunks_per_row(M);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.grad.scalar_type(), "interpolate_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor alpha = alpha_in.contiguous();
    const scalar_t* ap = alpha.const_data_ptr<scalar_t>();
    const scalar_t* gp = p.grad.const_data_ptr<scalar_t>();
    const scalar_t* rp = need_alpha ? p.real.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* fp = need_alpha ? p.fake.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* drp = need_real ? p.dreal.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* dfp = need_fake ? p.dfake.mutable_data_ptr<scalar_t>() : nullptr;
    std::vector<acc_t> partial(need_alpha ? B * C : 0);
    for_each_chunk(B, M, [&](int64_t b, int64_t c, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin, n = end - begin;
      const acc_t a = static_cast<acc_t>(ap[b]);
      scalar_t* dr = drp ? drp + o : nullptr;
      scalar_t* df = dfp ? dfp + o : nullptr;
      if (need_alpha) {  // one pass: g, real and fake read once
        partial[b * C + c] = loops::lerp_backward<scalar_t, acc_t>(gp + o, rp + o, fp + o, dr, df, a, n);
      } else {
        loops::lerp_grad<scalar_t, acc_t>(gp + o, dr, df, a, n);
      }
    });
    if (need_alpha) {
      scalar_t* dap = p.dalpha.mutable_data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) dap[b] = static_cast<scalar_t>(row_total(partial, b, C));
    }
  });
  return {p.dreal, p.dfake, p.dalpha};
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("interpolate", &interpolate);
  m.impl("interpolate_backward", &interpolate_backward);
}

}  // namespace cpu
}  // namespace fastgan
