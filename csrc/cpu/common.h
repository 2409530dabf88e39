// fastgan CPU kernels: the CPU's argument policy, the chunked parallel loop and deterministic
// reductions. The preparation of every operator (checks, layout, outputs) is shared with the CUDA
// glue: csrc/common/prepare.h.
#pragma once

#include "../common/prepare.h"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace fastgan {
namespace cpu {

// The device policy of prepare::prepare_<op>: a CPU tensor of any floating dtype.
struct CpuDevice {
  static void check_float(const at::Tensor& t, const char* name) {
    TORCH_CHECK(at::isFloatingType(t.scalar_type()), "fastgan: ", name, " must be a floating-point tensor, got ",
                t.scalar_type());
    TORCH_CHECK(t.device().is_cpu(), "fastgan: the cpu kernels take CPU tensors, ", name, " is on ", t.device());
  }
};

// Rows (samples) are processed in chunks of kChunk elements, so that a small batch of long rows
// still spreads over every thread. The chunking depends on the sizes only — never on the number
// of threads — and partial sums are combined in a fixed order: results are identical run to
// run and for any thread count. (fastgan._C.build_info()["chunk"] reports it to Python.)
constexpr int64_t kChunk = 16384;
// Fewer elements than this per task are not worth a thread.
constexpr int64_t kMinElementsPerTask = 32768;

inline int64_t chunks_per_row(int64_t M) { return std::max<int64_t>(1, (M + kChunk - 1) / kChunk); }

// Run f(b, c, begin, end) over every chunk [begin, end) of every row b in parallel.
template <typename F>
inline void for_each_chunk(int64_t B, int64_t M, const F& f) {
  const int64_t C = chunks_per_row(M);
  const int64_t per_task = std::min(M, kChunk);
  const int64_t grain = std::max<int64_t>(1, kMinElementsPerTask / std::max<int64_t>(per_task, 1));
  at::parallel_for(0, B * C, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / C, c = t % C;
      const int64_t begin = c * kChunk;
      f(b, c, begin, std::min(M, begin + kChunk));
    }
  });
}

// Per-row totals from per-chunk partial sums, added in chunk order.
template <typename acc_t>
inline acc_t row_total(const std::vector<acc_t>& partial, int64_t b, int64_t C) {
  acc_t s = acc_t(0);
  for (int64_t c = 0; c < C; ++c) s += partial[b * C + c];
  return s;
}

}  // namespace cpu
}  // namespace fastgan
