// fastgan: autograd of every operator, in C++ (the Autograd dispatch key, for every device).
//
// Forward and backward never return to Python: each public op is a torch::autograd::Function
// whose forward calls the op's *_forward (or the op itself) below autograd and whose backward
// calls the op's *_backward through the dispatcher, so the same code serves the CPU and CUDA
// kernels. Backwards are first-order only: differentiating one again raises a clear error.
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <tuple>

namespace fastgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::Tensor;

template <typename Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// Nodes are held by std::shared_ptr in older torch releases and by c10::intrusive_ptr in newer
// ones; make an Error node with whichever this torch uses.
using NodePtr = decltype(std::declval<torch::autograd::Edge>().function);
template <typename P>
struct NodeMaker;
template <>
struct NodeMaker<std::shared_ptr<torch::autograd::Node>> {
  template <typename N, typename... A>
  static std::shared_ptr<N> make(A&&... args) {
    return std::make_shared<N>(std::forward<A>(args)...);
  }
};
template <typename T>
struct NodeMaker<c10::intrusive_ptr<T>> {
  template <typename N, typename... A>
  static c10::intrusive_ptr<N> make(A&&... args) {
    return c10::make_intrusive<N>(std::forward<A>(args)...);
  }
};

// Like Python's @once_differentiable: when the backward runs under create_graph and something
// it read requires grad, its results hang off an Error node connected to those inputs, so that
// differentiating them again raises this message instead of returning a wrong value.
variable_list once_differentiable(variable_list grads, const variable_list& inputs, const char* name) {
  if (!at::GradMode::is_enabled() || !torch::autograd::any_variable_requires_grad(inputs)) return grads;
  auto err = NodeMaker<NodePtr>::make<torch::autograd::Error>(
      std::string("fastgan::") + name +
          ": the backward of this operator is first-order only; differentiating it twice (double backward) is not "
          "supported",
      torch::autograd::collect_next_edges(inputs));
  for (auto& g : grads) {
    if (g.defined()) {
      g = g.detach();
      torch::autograd::create_gradient_edge(g, err);
    }
  }
  return grads;
}

Tensor if_needed(const Tensor& t, bool needed) { return needed ? t : Tensor(); }

// ------------------------------------------------------------------------------ interpolate
struct InterpolateFn : public torch::autograd::Function<InterpolateFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& real, const Tensor& fake, const Tensor& alpha) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd = op<Tensor(const Tensor&, const Tensor&, const Tensor&)>("fastgan::interpolate");
    ctx->save_for_backward({real, fake, alpha});
    return fwd.call(real, fake, alpha);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    static auto bwd = op<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                            bool, bool, bool)>("fastgan::interpolate_backward");
    const auto saved = ctx->get_saved_variables();
    const bool nr = ctx->needs_input_grad(0), nf = ctx->needs_input_grad(1), na = ctx->needs_input_grad(2);
    Tensor dr, df, da;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dr, df, da) = bwd.call(grad_outputs[0], saved[0], saved[1], saved[2], nr, nf, na);
    }
    variable_list grads{if_needed(dr, nr), if_needed(df, nf), if_needed(da, na)};
    return once_differentiable(std::move(grads), {grad_outputs[0], saved[0], saved[1], saved[2]}, "interpolate");
  }
};

Tensor interpolate_autograd(const Tensor& real, const Tensor& fake, const Tensor& alpha) {
  return InterpolateFn::apply(real, fake, alpha);
}

// ------------------------------------------------------------------------ grad_norm_penalty
struct GradNormPenaltyFn : public torch::autograd::Function<GradNormPenaltyFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grads, double center, bool one_sided) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd =
        op<std::tuple<Tensor, Tensor>(const Tensor&, double, bool)>("fastgan::grad_norm_penalty_forward");
    auto [loss, norms] = fwd.call(grads, center, one_sided);
    ctx->save_for_backward({grads, norms});
    ctx->saved_data["center"] = center;
    ctx->saved_data["one_sided"] = one_sided;
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    static auto bwd = op<Tensor(const Tensor&, const Tensor&, const Tensor&, double, bool)>(
        "fastgan::grad_norm_penalty_backward");
    const auto saved = ctx->get_saved_variables();
    Tensor dg;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      dg = bwd.call(grad_outputs[0], saved[0], saved[1], ctx->saved_data["center"].toDouble(),
                    ctx->saved_data["one_sided"].toBool());
    }
    return once_differentiable({dg, Tensor(), Tensor()}, {grad_outputs[0], saved[0]}, "grad_norm_penalty");
  }
};

Tensor grad_norm_penalty_autograd(const Tensor& grads, double center, bool one_sided) {
  return GradNormPenaltyFn::apply(grads, center, one_sided);
}

// --------------------------------------------------------------------- reconstruction_error
struct ReconstructionErrorFn : public torch::autograd::Function<ReconstructionErrorFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& recon, int64_t p) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd = op<Tensor(const Tensor&, const Tensor&, int64_t)>("fastgan::reconstruction_error");
    ctx->save_for_backward({x, recon});
    ctx->saved_data["p"] = p;
    return fwd.call(x, recon, p);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    static auto bwd = op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, int64_t, bool, bool)>(
        "fastgan::reconstruction_error_backward");
    const auto saved = ctx->get_saved_variables();
    const bool nx = ctx->needs_input_grad(0), nr = ctx->needs_input_grad(1);
    Tensor dx, dr;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dx, dr) = bwd.call(grad_outputs[0], saved[0], saved[1], ctx->saved_data["p"].toInt(), nx, nr);
    }
    return once_differentiable({if_needed(dx, nx), if_needed(dr, nr), Tensor()},
                               {grad_outputs[0], saved[0], saved[1]}, "reconstruction_error");
  }
};

Tensor reconstruction_error_autograd(const Tensor& x, const Tensor& recon, int64_t p) {
  return ReconstructionErrorFn::apply(x, recon, p);
}

// ------------------------------------------------------------------------- adversarial_loss
struct AdversarialLossFn : public torch::autograd::Function<AdversarialLossFn> {
  // Absent sides are empty optionals: they are no autograd inputs, so the autograd edges are
  // numbered over the sides present (needs_input_grad takes that number).
  static Tensor forward(AutogradContext* ctx, const std::optional<Tensor>& real, const std::optional<Tensor>& fake,
                        std::string kind, double real_target, double fake_target, double margin) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd = op<Tensor(const std::optional<Tensor>&, const std::optional<Tensor>&, c10::string_view, double,
                                double, double)>("fastgan::adversarial_loss");
    variable_list to_save;
    if (real) to_save.push_back(*real);
    if (fake) to_save.push_back(*fake);
    ctx->save_for_backward(to_save);
    ctx->saved_data["has_real"] = real.has_value();
    ctx->saved_data["has_fake"] = fake.has_value();
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["real_target"] = real_target;
    ctx->saved_data["fake_target"] = fake_target;
    ctx->saved_data["margin"] = margin;
    return fwd.call(real, fake, kind, real_target, fake_target, margin);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    static auto bwd = op<std::tuple<Tensor, Tensor>(const Tensor&, const std::optional<Tensor>&,
                                                    const std::optional<Tensor>&, c10::string_view, double, double,
                                                    double, bool, bool)>("fastgan::adversarial_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const bool has_real = ctx->saved_data["has_real"].toBool(), has_fake = ctx->saved_data["has_fake"].toBool();
    std::optional<Tensor> real, fake;
    size_t edge = 0;
    bool nr = false, nf = false;
    if (has_real) {
      real = saved[edge];
      nr = ctx->needs_input_grad(edge++);
    }
    if (has_fake) {
      fake = saved[edge];
      nf = ctx->needs_input_grad(edge++);
    }
    Tensor dr, df;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      const std::string kind = ctx->saved_data["kind"].toStringRef();
      std::tie(dr, df) = bwd.call(grad_outputs[0], real, fake, kind, ctx->saved_data["real_target"].toDouble(),
                                  ctx->saved_data["fake_target"].toDouble(), ctx->saved_data["margin"].toDouble(), nr,
                                  nf);
    }
    variable_list read = saved;
    read.push_back(grad_outputs[0]);
    return once_differentiable({if_needed(dr, nr), if_needed(df, nf), Tensor(), Tensor(), Tensor(), Tensor()}, read,
                               "adversarial_loss");
  }
};

Tensor adversarial_loss_autograd(const std::optional<Tensor>& real, const std::optional<Tensor>& fake,
                                 c10::string_view kind, double real_target, double fake_target, double margin) {
  return AdversarialLossFn::apply(real, fake, std::string(kind), real_target, fake_target, margin);
}

}  // namespace
}  // namespace fastgan

TORCH_LIBRARY_IMPL(fastgan, Autograd, m) {
  m.impl("interpolate", &fastgan::interpolate_autograd);
  m.impl("grad_norm_penalty", &fastgan::grad_norm_penalty_autograd);
  m.impl("reconstruction_error", &fastgan::reconstruction_error_autograd);
  m.impl("adversarial_loss", &fastgan::adversarial_loss_autograd);
}
