// adversarial_loss on the CPU: mean(t_real(real)) + mean(t_fake(fake)) in one call.
//
// Either side may be absent. Each side is reduced over all its elements in memory order (any
// dense layout; others are made contiguous), with fixed chunking, so the sum does not depend on
// the number of threads. The backward writes d/dx of the terms scaled by grad_out / N.
#include "common.h"
#include "loops.h"

#include <torch/library.h>

#include <optional>
#include <tuple>

namespace fastgan {
namespace cpu {

namespace {

// mean over all elements of t_side(x)
template <int K, bool REAL, typename scalar_t, typename acc_t>
acc_t side_mean(const at::Tensor& x, acc_t target, acc_t margin) {
  const scalar_t* p = x.const_data_ptr<scalar_t>();
  const int64_t N = x.numel(), C = chunks_per_row(N);
  std::vector<acc_t> partial(C);
  for_each_chunk(1, N, [&](int64_t, int64_t c, int64_t begin, int64_t end) {
    partial[c] = loops::adv_sum<K, REAL, scalar_t, acc_t>(p + begin, end - begin, target, margin);
  });
  return row_total(partial, 0, C) / static_cast<acc_t>(N);
}

template <int K, bool REAL, typename scalar_t, typename acc_t>
void side_grad(const at::Tensor& x, at::Tensor& dx, acc_t scale, acc_t target, acc_t margin) {
  const scalar_t* p = x.const_data_ptr<scalar_t>();
  scalar_t* d = dx.mutable_data_ptr<scalar_t>();
  const int64_t N = x.numel();
  for_each_chunk(1, N, [&](int64_t, int64_t, int64_t begin, int64_t end) {
    loops::adv_grad<K, REAL, scalar_t, acc_t>(p + begin, d + begin, scale, end - begin, target, margin);
  });
}

// f(std::integral_constant<int, K>()) for a kind code that prepare::kind_code has checked.
template <typename F>
void dispatch_kind(int kind, const F& f) {
  terms::dispatch_kind(kind, f, [] { TORCH_CHECK(false, "fastgan: unknown kind code"); });
}

}  // namespace

at::Tensor adversarial_loss(const std::optional<at::Tensor>& real_in, const std::optional<at::Tensor>& fake_in,
                            c10::string_view kind, double real_target, double fake_target, double margin) {
  const auto p = prepare::prepare_adversarial<CpuDevice>(real_in, fake_in, kind);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.any.scalar_type(), "adversarial_loss", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_kind(p.kind, [&](auto kc) {
      constexpr int K = decltype(kc)::value;
      acc_t total = acc_t(0);
      if (p.real.defined()) total += side_mean<K, true, scalar_t, acc_t>(p.real, acc_t(real_target), acc_t(margin));
      if (p.fake.defined()) total += side_mean<K, false, scalar_t, acc_t>(p.fake, acc_t(fake_target), acc_t(margin));
      *p.loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(total);
    });
  });
  return p.loss;
}

std::tuple<at::Tensor, at::Tensor> adversarial_loss_backward(const at::Tensor& grad_out,
                                                             const std::optional<at::Tensor>& real_in,
                                                             const std::optional<at::Tensor>& fake_in,
                                                             c10::string_view kind, double real_target,
                                                             double fake_target, double margin, bool need_real,
                                                             bool need_fake) {
  auto p = prepare::prepare_adversarial_backward<CpuDevice>(grad_out, real_in, fake_in, kind, need_real, need_fake);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.any.scalar_type(), "adversarial_loss_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const acc_t gout = grad_out.to(c10::CppTypeToScalarType<acc_t>::value).item<acc_t>();
    dispatch_kind(p.kind, [&](auto kc) {
      constexpr int K = decltype(kc)::value;
      if (need_real) {
        side_grad<K, true, scalar_t, acc_t>(p.real, p.dreal, gout / static_cast<acc_t>(p.real.numel()),
                                            acc_t(real_target), acc_t(margin));
      }
      if (need_fake) {
        side_grad<K, false, scalar_t, acc_t>(p.fake, p.dfake, gout / static_cast<acc_t>(p.fake.numel()),
                                             acc_t(fake_target), acc_t(margin));
      }
    });
  });
  return {p.dreal, p.dfake};
}

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("adversarial_loss", &adversarial_loss);
  m.impl("adversarial_loss_backward", &adversarial_loss_backward);
}

}  // namespace cpu
}  // namespace fastgan
