// fastgan: autograd of every operator, written once, in C++ (the Autograd dispatch key, for every
// device and every non-reference backend).
//
// Forward and backward never return to Python: each public op is a torch::autograd::Function
// whose forward calls the op's *_forward (or the op itself) below autograd and whose backward
// calls the op's *_backward through the dispatcher. Each Function is parametrised by the namespace
// whose ops it calls (both declare the same schemas, csrc/fastgan.cpp): fastgan (the C++ CPU and
// CUDA kernels) and fastgan_triton (the Triton kernels, registered from Python) share one formula.
// Each forward saves only what its backward reads (a constant input that the backward does not
// read may be an inference tensor, or be modified in place before the backward).
//
// A backward that runs under create_graph (double backward, unrolled GANs, a penalty on a loss's
// gradient) calls fastgan::_<op>_backward_composite instead, for both namespaces: PyTorch
// composite math registered from Python (fastgan/ops/_autograd.py), itself differentiable to any
// order. Where it is not registered (the C++-only library), the fused backward runs and
// differentiating its result again raises a clear error.
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/library.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

// The namespaces whose ops the Functions call, as template tags (at global scope, so that the
// autograd nodes read InterpolateFn<FastganTritonOps> and the like in grad_fn names and profiles).
struct FastganOps {  // the C++ CPU and CUDA kernels
  static constexpr const char* ns = "fastgan::";
};
struct FastganTritonOps {  // the Triton kernels (fastgan/triton/<op>.py)
  static constexpr const char* ns = "fastgan_triton::";
};

namespace fastgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::Tensor;

// The op <name> of namespace Ns (looked up once per Function and namespace: the callers keep the
// handle in a static).
template <typename Ns, typename Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow((std::string(Ns::ns) + name).c_str(), "").typed<Sig>();
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
variable_list once_differentiable(variable_list grads, const variable_list& inputs, const char* ns,
                                  const char* name) {
  if (!at::GradMode::is_enabled() || !torch::autograd::any_variable_requires_grad(inputs)) return grads;
  auto err = NodeMaker<NodePtr>::make<torch::autograd::Error>(
      std::string(ns) + name +
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

// Whether this backward must itself be differentiable: it runs under create_graph and something it
// reads requires grad.
bool differentiable(const variable_list& read) {
  return at::GradMode::is_enabled() && torch::autograd::any_variable_requires_grad(read);
}

// fastgan::_<name>_backward_composite, when Python has registered its composite implementation.
template <typename Sig>
std::optional<c10::TypedOperatorHandle<Sig>> composite(const std::string& name) {
  auto handle = c10::Dispatcher::singleton().findOp({"fastgan::_" + name + "_backward_composite", ""});
  if (!handle || !handle->hasKernelForDispatchKey(c10::DispatchKey::CompositeImplicitAutograd)) return std::nullopt;
  return handle->typed<Sig>();
}

// What a forward saves of an input its backward reads: the input itself when it requires grad; a
// constant (an input that needs no gradient) as a copy-on-write clone, so that the caller may
// modify it in place before the backward (the clone keeps the old values; nothing is copied unless
// that happens) and an inference tensor, which autograd cannot save, is saved all the same. (The
// Triton host code passes the kernels the address of what they only read without materialising
// the clone: fastgan/triton/_common.py.)
Tensor savable(const Tensor& t) { return t.requires_grad() ? t : at::_lazy_clone(t); }

// ------------------------------------------------------------------------------ interpolate
// real and fake are read only for alpha's gradient; alpha only for real's and fake's.
template <typename Ns>
struct InterpolateFn : public torch::autograd::Function<InterpolateFn<Ns>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& real, const Tensor& fake, const Tensor& alpha) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd = op<Ns, Tensor(const Tensor&, const Tensor&, const Tensor&)>("interpolate");
    const bool keep_sides = alpha.requires_grad(), keep_alpha = real.requires_grad() || fake.requires_grad();
    ctx->save_for_backward({keep_sides ? savable(real) : Tensor(), keep_sides ? savable(fake) : Tensor(),
                            keep_alpha ? savable(alpha) : Tensor()});
    return fwd.call(real, fake, alpha);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    using Sig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                                                  bool, bool);
    static auto bwd = op<Ns, Sig>("interpolate_backward");
    const auto saved = ctx->get_saved_variables();
    const Tensor& g = grad_outputs[0];
    const bool nr = ctx->needs_input_grad(0), nf = ctx->needs_input_grad(1), na = ctx->needs_input_grad(2);
    // Stand-ins for what was not saved (never read): the gradient's shape, and a zero alpha.
    const Tensor real = saved[0].defined() ? saved[0] : g.detach(), fake = saved[1].defined() ? saved[1] : g.detach();
    const Tensor alpha = saved[2].defined() ? saved[2] : at::zeros({g.size(0)}, g.options());
    const variable_list read{g, real, fake, alpha};
    Tensor dr, df, da;
    if (differentiable(read)) {
      if (auto c = composite<Sig>("interpolate")) {
        std::tie(dr, df, da) = c->call(g, real, fake, alpha, nr, nf, na);
        return {if_needed(dr, nr), if_needed(df, nf), if_needed(da, na)};
      }
    }
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dr, df, da) = bwd.call(g, real, fake, alpha, nr, nf, na);
    }
    return once_differentiable({if_needed(dr, nr), if_needed(df, nf), if_needed(da, na)}, read, Ns::ns, "interpolate");
  }
};

template <typename Ns>
Tensor interpolate_autograd(const Tensor& real, const Tensor& fake, const Tensor& alpha) {
  return InterpolateFn<Ns>::apply(real, fake, alpha);
}

// ------------------------------------------------------------------------ grad_norm_penalty
template <typename Ns>
struct GradNormPenaltyFn : public torch::autograd::Function<GradNormPenaltyFn<Ns>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grads, double center, bool one_sided) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd =
        op<Ns, std::tuple<Tensor, Tensor>(const Tensor&, double, bool)>("grad_norm_penalty_forward");
    auto [loss, norms] = fwd.call(grads, center, one_sided);
    ctx->save_for_backward({savable(grads), norms});
    ctx->saved_data["center"] = center;
    ctx->saved_data["one_sided"] = one_sided;
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    using Sig = Tensor(const Tensor&, const Tensor&, const Tensor&, double, bool);
    static auto bwd = op<Ns, Sig>("grad_norm_penalty_backward");
    const auto saved = ctx->get_saved_variables();
    const double center = ctx->saved_data["center"].toDouble();
    const bool one_sided = ctx->saved_data["one_sided"].toBool();
    const variable_list read{grad_outputs[0], saved[0]};
    if (differentiable(read)) {
      if (auto c = composite<Sig>("grad_norm_penalty")) {
        return {c->call(grad_outputs[0], saved[0], saved[1], center, one_sided), Tensor(), Tensor()};
      }
    }
    Tensor dg;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      dg = bwd.call(grad_outputs[0], saved[0], saved[1], center, one_sided);
    }
    return once_differentiable({dg, Tensor(), Tensor()}, read, Ns::ns, "grad_norm_penalty");
  }
};

template <typename Ns>
Tensor grad_norm_penalty_autograd(const Tensor& grads, double center, bool one_sided) {
  return GradNormPenaltyFn<Ns>::apply(grads, center, one_sided);
}

// --------------------------------------------------------------------- reconstruction_error
// Both inputs are read by either gradient (through x − recon).
template <typename Ns>
struct ReconstructionErrorFn : public torch::autograd::Function<ReconstructionErrorFn<Ns>> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& recon, int64_t p) {
    at::AutoDispatchBelowADInplaceOrView guard;
    static auto fwd = op<Ns, Tensor(const Tensor&, const Tensor&, int64_t)>("reconstruction_error");
    ctx->save_for_backward({savable(x), savable(recon)});
    ctx->saved_data["p"] = p;
    return fwd.call(x, recon, p);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    using Sig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, int64_t, bool, bool);
    static auto bwd = op<Ns, Sig>("reconstruction_error_backward");
    const auto saved = ctx->get_saved_variables();
    const bool nx = ctx->needs_input_grad(0), nr = ctx->needs_input_grad(1);
    const int64_t p = ctx->saved_data["p"].toInt();
    const variable_list read{grad_outputs[0], saved[0], saved[1]};
    Tensor dx, dr;
    if (differentiable(read)) {
      if (auto c = composite<Sig>("reconstruction_error")) {
        std::tie(dx, dr) = c->call(grad_outputs[0], saved[0], saved[1], p, nx, nr);
        return {if_needed(dx, nx), if_needed(dr, nr), Tensor()};
      }
    }
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dx, dr) = bwd.call(grad_outputs[0], saved[0], saved[1], p, nx, nr);
    }
    return once_differentiable({if_needed(dx, nx), if_needed(dr, nr), Tensor()}, read, Ns::ns, "reconstruction_error");
  }
};

template <typename Ns>
Tensor reconstruction_error_autograd(const Tensor& x, const Tensor& recon, int64_t p) {
  return ReconstructionErrorFn<Ns>::apply(x, recon, p);
}

// ------------------------------------------------------------------------- adversarial_loss
// Each side's gradient reads that side only: a side that needs no gradient is not saved.
template <typename Ns>
struct AdversarialLossFn : public torch::autograd::Function<AdversarialLossFn<Ns>> {
  // Absent sides are empty optionals: they are no autograd inputs, so the autograd edges are
  // numbered over the sides present (needs_input_grad takes that number).
  static Tensor forward(AutogradContext* ctx, const std::optional<Tensor>& real, const std::optional<Tensor>& fake,
                        std::string kind, double real_target, double fake_target, double margin) {
    at::AutoDispatchBelowADInplaceOrView guard;
    using Sig = Tensor(const std::optional<Tensor>&, const std::optional<Tensor>&, c10::string_view, double, double,
                       double);
    static auto fwd = op<Ns, Sig>("adversarial_loss");
    const bool keep_real = real && real->requires_grad(), keep_fake = fake && fake->requires_grad();
    ctx->save_for_backward({keep_real ? savable(*real) : Tensor(), keep_fake ? savable(*fake) : Tensor()});
    ctx->saved_data["has_real"] = real.has_value();
    ctx->saved_data["has_fake"] = fake.has_value();
    ctx->saved_data["kind"] = kind;
    ctx->saved_data["real_target"] = real_target;
    ctx->saved_data["fake_target"] = fake_target;
    ctx->saved_data["margin"] = margin;
    return fwd.call(real, fake, kind, real_target, fake_target, margin);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    using Sig = std::tuple<Tensor, Tensor>(const Tensor&, const std::optional<Tensor>&, const std::optional<Tensor>&,
                                           c10::string_view, double, double, double, bool, bool);
    static auto bwd = op<Ns, Sig>("adversarial_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const bool has_real = ctx->saved_data["has_real"].toBool(), has_fake = ctx->saved_data["has_fake"].toBool();
    size_t edge = 0;
    const bool nr = has_real && ctx->needs_input_grad(edge++);
    const bool nf = has_fake && ctx->needs_input_grad(edge++);
    // a side is passed to the backward only when its gradient is needed (and so it was saved)
    std::optional<Tensor> real, fake;
    if (nr) real = saved[0];
    if (nf) fake = saved[1];
    const std::string kind = ctx->saved_data["kind"].toStringRef();
    const double rt = ctx->saved_data["real_target"].toDouble(), ft = ctx->saved_data["fake_target"].toDouble(),
                 margin = ctx->saved_data["margin"].toDouble();
    variable_list read{grad_outputs[0]};
    if (nr) read.push_back(*real);
    if (nf) read.push_back(*fake);
    Tensor dr, df;
    bool done = false;
    if (differentiable(read)) {
      if (auto c = composite<Sig>("adversarial_loss")) {
        std::tie(dr, df) = c->call(grad_outputs[0], real, fake, kind, rt, ft, margin, nr, nf);
        done = true;
      }
    }
    if (!done && (nr || nf)) {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(dr, df) = bwd.call(grad_outputs[0], real, fake, kind, rt, ft, margin, nr, nf);
    }
    variable_list grads{if_needed(dr, nr), if_needed(df, nf), Tensor(), Tensor(), Tensor(), Tensor()};
    return done ? grads : once_differentiable(std::move(grads), read, Ns::ns, "adversarial_loss");
  }
};

template <typename Ns>
Tensor adversarial_loss_autograd(const std::optional<Tensor>& real, const std::optional<Tensor>& fake,
                                 c10::string_view kind, double real_target, double fake_target, double margin) {
  return AdversarialLossFn<Ns>::apply(real, fake, std::string(kind), real_target, fake_target, margin);
}

// The Autograd kernels of namespace Ns's public ops.
template <typename Ns>
void register_autograd(torch::Library& m) {
  m.impl("interpolate", &interpolate_autograd<Ns>);
  m.impl("grad_norm_penalty", &grad_norm_penalty_autograd<Ns>);
  m.impl("reconstruction_error", &reconstruction_error_autograd<Ns>);
  m.impl("adversarial_loss", &adversarial_loss_autograd<Ns>);
}

}  // namespace
}  // namespace fastgan

TORCH_LIBRARY_IMPL(fastgan, Autograd, m) { fastgan::register_autograd<FastganOps>(m); }
TORCH_LIBRARY_IMPL(fastgan_triton, Autograd, m) { fastgan::register_autograd<FastganTritonOps>(m); }
