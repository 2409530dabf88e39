// fastgan: operator schemas (the one place they are declared) and build information.
//
// Kernels register per device in csrc/cpu/<op>.cpp (CPU) and csrc/cuda/bindings.cpp (CUDA), the
// Triton kernels in fastgan/triton/<op>.py (namespace fastgan_triton, same schemas); autograd for
// every device and both namespaces in csrc/autograd.cpp. Built as the Python extension fastgan._C by
// setup.py (FASTGAN_PYTHON_MODULE defined), or as a plain shared library by CMakeLists.txt for
// torch.ops.load_library and C++ users.
#include <torch/library.h>

#include <ATen/Parallel.h>

#include <sstream>
#include <string>

#ifdef FASTGAN_PYTHON_MODULE
#include <torch/extension.h>
#endif

#include "cpu/simd.h"

namespace fastgan {

std::string baseline_simd() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE4_2__)
  return "SSE4.2";
#elif defined(__SSE2__)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "scalar";
#endif
}

// The compile-time baseline, and the variant of the hot loops chosen on this CPU.
std::string simd_level() {
  return baseline_simd() + "; hot loops run " + (cpu::loops::cpu_has_avx2() ? "AVX2" : "baseline") + " code";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#elif defined(_MSC_VER)
  return "msvc " + std::to_string(_MSC_VER);
#else
  return "unknown";
#endif
}

std::string parallel_backend() {
#if defined(_OPENMP)
  return "OpenMP " + std::to_string(_OPENMP);
#else
  return "serial (built without OpenMP)";
#endif
}

bool with_cuda() {
#ifdef FASTGAN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

// One line per fact, "key: value"; the Python module also exposes them as a dict.
std::string build_info() {
  std::ostringstream s;
  s << "compiler: " << compiler() << "\n"
    << "simd: " << simd_level() << "\n"
    << "parallel: " << parallel_backend() << "\n"
    << "threads: " << at::get_num_threads() << "\n"
    << "cuda_kernels: " << (with_cuda() ? "yes" : "no") << "\n";
  return s.str();
}

}  // namespace fastgan

namespace fastgan {
namespace {

// The schemas of the fused ops and their fused backward ops, declared once for the two namespaces
// that implement them: fastgan (the C++ CPU and CUDA kernels) and fastgan_triton (the Triton
// kernels, registered from Python in fastgan/triton/<op>.py). Both get the same autograd
// (csrc/autograd.cpp) and the same fake implementations (fastgan/ops/<op>.py).
void declare_ops(torch::Library& m) {
  m.def("interpolate(Tensor real, Tensor fake, Tensor alpha) -> Tensor");
  m.def(
      "interpolate_backward(Tensor grad, Tensor real, Tensor fake, Tensor alpha, bool need_real, bool need_fake, "
      "bool need_alpha) -> (Tensor, Tensor, Tensor)");
  m.def("grad_norm_penalty(Tensor grads, float center, bool one_sided) -> Tensor");
  m.def("grad_norm_penalty_forward(Tensor grads, float center, bool one_sided) -> (Tensor, Tensor)");
  m.def(
      "grad_norm_penalty_backward(Tensor grad_out, Tensor grads, Tensor norms, float center, bool one_sided) -> "
      "Tensor");
  m.def("reconstruction_error(Tensor x, Tensor recon, int p) -> Tensor");
  m.def(
      "reconstruction_error_backward(Tensor grad_out, Tensor x, Tensor recon, int p, bool need_x, bool need_recon) "
      "-> (Tensor, Tensor)");
  m.def(
      "adversarial_loss(Tensor? real, Tensor? fake, str kind, float real_target, float fake_target, float margin) "
      "-> Tensor");
  m.def(
      "adversarial_loss_backward(Tensor grad_out, Tensor? real, Tensor? fake, str kind, float real_target, "
      "float fake_target, float margin, bool need_real, bool need_fake) -> (Tensor, Tensor)");
}

}  // namespace
}  // namespace fastgan

TORCH_LIBRARY(fastgan, m) {
  fastgan::declare_ops(m);
  // Per operator, _<op>_backward_composite: the backward as differentiable composite math for a
  // backward under create_graph (csrc/autograd.cpp, for both namespaces), implemented in Python
  // (fastgan/ops/_autograd.py) with the *_backward op's signature.
  m.def(
      "_interpolate_backward_composite(Tensor grad, Tensor real, Tensor fake, Tensor alpha, bool need_real, "
      "bool need_fake, bool need_alpha) -> (Tensor, Tensor, Tensor)");
  m.def(
      "_grad_norm_penalty_backward_composite(Tensor grad_out, Tensor grads, Tensor norms, float center, "
      "bool one_sided) -> Tensor");
  m.def(
      "_reconstruction_error_backward_composite(Tensor grad_out, Tensor x, Tensor recon, int p, bool need_x, "
      "bool need_recon) -> (Tensor, Tensor)");
  m.def(
      "_adversarial_loss_backward_composite(Tensor grad_out, Tensor? real, Tensor? fake, str kind, "
      "float real_target, float fake_target, float margin, bool need_real, bool need_fake) -> (Tensor, Tensor)");
}

// The Triton kernels' ops: the same schemas; the kernels are Python functions registered for the
// CUDA key (and CPU under Triton's interpreter) when fastgan.triton is imported.
TORCH_LIBRARY(fastgan_triton, m) { fastgan::declare_ops(m); }

#ifdef FASTGAN_PYTHON_MODULE
#include "common/terms.h"
#include "cpu/common.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastgan compiled kernels (the operators are torch.ops.fastgan.*)";
  m.attr("WITH_CUDA") = fastgan::with_cuda();
  m.def("build_info", [] {
    pybind11::dict d;
    d["compiler"] = fastgan::compiler();
    d["simd"] = fastgan::simd_level();
    d["parallel"] = fastgan::parallel_backend();
    d["openmp_threads"] = at::get_num_threads();
    d["cuda_kernels"] = fastgan::with_cuda();
    // the kind codes' table (csrc/common/terms.h): the names in code order
    pybind11::tuple kinds(fastgan::terms::kNumKinds);
    for (int k = 0; k < fastgan::terms::kNumKinds; ++k) kinds[k] = pybind11::str(fastgan::terms::kKindNames[k]);
    d["kinds"] = kinds;
    d["chunk"] = fastgan::cpu::kChunk;  // the CPU kernels' chunk (csrc/cpu/common.h)
    return d;
  }, "compiler, SIMD level, parallel backend and threads, whether CUDA kernels are built, the kind codes' "
     "names in code order, the CPU kernels' chunk size");
}
#endif
