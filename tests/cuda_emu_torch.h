// CPU stand-ins for the CUDA parts of torch that csrc/cuda/bindings.cpp uses, for
// tests/test_cuda_build.py only: with these, the glue is built against a CPU build of torch,
// linked with the kernels built against tests/cuda_emu.h, and registered (as the CPU kernels of a
// test library of the same operators) to run on CPU tensors. The test rewrites the glue's
// `#include <c10/cuda/...>` lines into an include of this header and its CUDA device checks into
// CPU ones.
#pragma once

#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>
#include <cuda_runtime_api.h>

#include <string>

namespace c10 {
namespace cuda {

struct CUDAGuard {
  explicit CUDAGuard(c10::Device) {}
};

struct CUDAStream {
  cudaStream_t stream() const { return nullptr; }
};

inline CUDAStream getCurrentCUDAStream() { return {}; }

}  // namespace cuda
}  // namespace c10

#define C10_CUDA_CHECK(expr)                                                                     \
  do {                                                                                           \
    const cudaError_t fastgan_emu_err = (expr);                                                  \
    TORCH_CHECK(fastgan_emu_err == cudaSuccess, "fastgan (emulated): launch failed with error ", \
                static_cast<int>(fastgan_emu_err));                                              \
  } while (0)

namespace fastgan {
namespace cpu {

// The kind codes of csrc/cpu/adversarial_loss.cpp (defined there in the real extension).
int kind_code(c10::string_view kind) {
  const char* kinds[] = {"bce", "wgan", "lsgan", "hinge", "margin"};
  for (int k = 0; k < 5; ++k) {
    if (kind == kinds[k]) return k;
  }
  TORCH_CHECK(false, "fastgan: kind must be one of bce, wgan, lsgan, hinge, margin, got '", std::string(kind), "'");
}

}  // namespace cpu
}  // namespace fastgan
