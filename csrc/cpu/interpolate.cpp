// interpolate on the CPU: x̂ = fake + alpha_b (real − fake).
//
// Forward reads real and fake once and writes x̂ once, in the layout of real when real and fake
// share a sample-blocked layout (contiguous, channels-last, …), otherwise contiguous. Backward
// reads the incoming gradient (and real, fake only when alpha's gradient is asked for) once and
// writes the gradients asked for.
#include "common.h"
#include "loops.h"
#include "../common/terms.h"

#include <torch/library.h>

#include <tuple>

namespace fastgan {
namespace cpu {

namespace {
void check_alpha(const at::Tensor& alpha, const at::Tensor& real) {
  check_float(alpha, "alpha");
  TORCH_CHECK(alpha.dim() == 1 && alpha.size(0) == real.size(0), "fastgan: alpha must have shape (B,) = (",
              real.size(0), ",), got ", alpha.sizes());
  TORCH_CHECK(alpha.scalar_type() == real.scalar_type(), "fastgan: alpha has dtype ", alpha.scalar_type(),
              " but real has dtype ", real.scalar_type());
}
}  // namespace

at::Tensor interpolate(const at::Tensor& real_in, const at::Tensor& fake_in, const at::Tensor& alpha_in) {
  check_batched(real_in, "real");
  check_float(fake_in, "fake");
  check_same(real_in, "real", fake_in, "fake");
  check_alpha(alpha_in, real_in);
  const auto ts = common_layout({real_in, fake_in});
  const at::Tensor &real = ts[0], &fake = ts[1];
  const int64_t B = real.size(0), M = real.numel() / B;
  at::Tensor out = at::empty_like(real);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, real.scalar_type(), "interpolate", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor alpha = alpha_in.contiguous();
    const scalar_t* ap = alpha.const_data_ptr<scalar_t>();
    const scalar_t* rp = real.const_data_ptr<scalar_t>();
    const scalar_t* fp = fake.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    for_each_chunk(B, M, [&](int64_t b, int64_t, int64_t begin, int64_t end) {
      const int64_t o = b * M + begin;
      loops::lerp<scalar_t, acc_t>(rp + o, fp + o, op + o, static_cast<acc_t>(ap[b]), end - begin);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> interpolate_backward(const at::Tensor& grad_in, const at::Tensor& real_in,
                                                                    const at::Tensor& fake_in, const at::Tensor& alpha_in,
                                                                    bool need_real, bool need_fake, bool need_alpha) {
  check_batched(real_in, "real");
  check_same(real_in, "real", fake_in, "fake");
  check_same(real_in, "real", grad_in, "grad");
  check_alpha(alpha_in, real_in);
  // real and fake are read only for alpha's gradient
  const auto ts = need_alpha ? common_layout({grad_in, real_in, fake_in}) : common_layout({grad_in});
  const at::Tensor& grad = ts[0];
  const int64_t B = grad.size(0), M = grad.numel() / B, C = chunks_per_row(M);
  at::Tensor dreal = need_real ? at::empty_like(grad) : not_needed(grad);
  at::Tensor dfake = need_fake ? at::empty_like(grad) : not_needed(grad);
  at::Tensor dalpha = need_alpha ? at::empty({B}, alpha_in.options()) : not_needed(grad);
  if (!need_real && !need_fake && !need_alpha) return {dreal, dfake, dalpha};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "interpolate_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor alpha = alpha_in.contiguous();
    const scalar_t* ap = alpha.const_data_ptr<scalar_t>();
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    const scalar_t* rp = need_alpha ? ts[1].const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* fp = need_alpha ? ts[2].const_data_ptr<scalar_t>() : nullptr;
    scalar_t* drp = need_real ? dreal.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* dfp = need_fake ? dfake.mutable_data_ptr<scalar_t>() : nullptr;
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
      scalar_t* dap = dalpha.mutable_data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) dap[b] = static_cast<scalar_t>(row_total(partial, b, C));
    }
  });
  return {dreal, dfake, dalpha};
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("interpolate", &interpolate);
  m.impl("interpolate_backward", &interpolate_backward);
}

}  // namespace cpu
}  // namespace fastgan
