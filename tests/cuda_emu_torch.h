// CPU stand-ins for the CUDA parts of torch that csrc/cuda/bindings.cpp uses, for
// tests/test_cuda_build.py only: with these, the glue is built against a CPU build of torch,
// linked with the kernels built against tests/cuda_emu.h, and registered (as the CPU kernels of a
// test library of the same operators) to run on CPU tensors. The test rewrites the glue's
// `#include <c10/cuda/...>` lines into an include of this header and its CUDA device checks into
// CPU ones.
#pragma once

#include <c10/core/Device.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

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
