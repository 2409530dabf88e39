"""The compiled extension as built: build info, the CMake library, the baseline (non-AVX2) code
path, and thread-count independence."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fastgan
from fastgan import backends

ROOT = Path(__file__).resolve().parent.parent
needs_extension = pytest.mark.skipif(backends.extension() is None, reason="fastgan._C is not built here")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@needs_extension
def test_build_info():
    info = backends.extension().build_info()
    assert set(info) == {"compiler", "simd", "parallel", "openmp_threads", "cuda_kernels", "kinds", "chunk"}
    assert info["cuda_kernels"] is backends.extension().WITH_CUDA
    assert info["openmp_threads"] == torch.get_num_threads()
    assert info["parallel"].startswith("OpenMP")  # at::parallel_for really runs in parallel
    assert isinstance(info["chunk"], int) and info["chunk"] > 0


@needs_extension
def test_kind_codes_agree_with_python():
    """The C++ kind table (csrc/common/terms.h), in code order, is Python's KINDS: the kernels
    receive a kind by name and the tests call the emulated CUDA launchers by KINDS.index(kind)."""
    from fastgan.ops.adversarial_loss import KINDS

    assert backends.extension().build_info()["kinds"] == tuple(KINDS)


@needs_extension
def test_chunk_size_agrees_with_python():
    """The CPU kernels' chunk (csrc/cpu/common.h's kChunk) is fastgan.testing's CHUNK, which the
    tests use to build rows that span several chunks."""
    from fastgan.testing import CHUNK

    assert backends.extension().build_info()["chunk"] == CHUNK


# A check of every operator against plain PyTorch, run in a fresh process.
_CHECK_OPS = """
import torch
torch.manual_seed(0)
ops = torch.ops.fastgan
x, y = torch.randn(3, 5, 7, requires_grad=True), torch.randn(3, 5, 7, requires_grad=True)
a = torch.rand(3, requires_grad=True)

def close(out, ref):
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-6)

def both(f, g, inputs):
    out, ref = f(), g()
    close([out], [ref])
    close(torch.autograd.grad(out, inputs), torch.autograd.grad(ref, inputs))

both(lambda: ops.grad_norm_penalty(x, 1.0, False), lambda: ((x.flatten(1).norm(dim=1) - 1) ** 2).mean(), [x])
both(lambda: ops.reconstruction_error(x, y, 1).sum(), lambda: (x - y).abs().flatten(1).mean(1).sum(), [x, y])
both(lambda: ops.reconstruction_error(x, y, 2).sum(), lambda: ((x - y) ** 2).flatten(1).mean(1).sum(), [x, y])
both(lambda: (ops.interpolate(x, y, a) * y).sum(), lambda: ((y + a[:, None, None] * (x - y)) * y).sum(), [x, a])
both(lambda: ops.adversarial_loss(x, y, "bce", 1.0, 0.0, 1.0),
     lambda: torch.nn.functional.softplus(-x).mean() + torch.nn.functional.softplus(y).mean(), [x, y])
print("ok")
"""


@needs_extension
def test_baseline_code_path_without_avx2():
    """The hot loops exist in a baseline and an AVX2 variant; CI machines take AVX2, so the
    baseline one is forced here."""
    r = _python("import fastgan\n" + _CHECK_OPS, FASTGAN_DISABLE_AVX2="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@needs_extension
@pytest.mark.parametrize("shape", [(5, 3, 11, 13), (2, 3, 100, 70), (1, 50000)])
def test_results_identical_for_one_and_two_threads(shape):
    """Fixed chunking and a fixed combining order: the thread count changes nothing."""
    torch.manual_seed(1)
    x, y = torch.randn(shape), torch.randn(shape)
    a = torch.rand(shape[0])
    calls = [
        lambda: torch.ops.fastgan.grad_norm_penalty_forward(x, 1.0, False),
        lambda: torch.ops.fastgan.reconstruction_error(x, y, 1),
        lambda: torch.ops.fastgan.reconstruction_error(x, y, 2),
        lambda: torch.ops.fastgan.interpolate_backward(y, x, y, a, True, True, True),
        lambda: torch.ops.fastgan.adversarial_loss(x, y, "bce", 1.0, 0.0, 1.0),
    ]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [c() for c in calls]
        torch.set_num_threads(2)
        two = [c() for c in calls]
    finally:
        torch.set_num_threads(before)
    for o, t in zip(one, two):
        for u, w in zip(o if isinstance(o, tuple) else (o,), t if isinstance(t, tuple) else (t,)):
            assert torch.equal(u, w)


def _cuda_home() -> str | None:
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME


def _cmake_skip_reason() -> str | None:
    """Why the CMake test cannot run here, or None. A CUDA build of torch makes its CMake config
    (Caffe2Config.cmake) link every library against the CUDA toolkit's runtime libraries, so it
    needs a full toolkit (CUDA::cudart, CUDA::nvrtc, ...): a CUDA directory with nvcc and headers but
    not those libraries (on the CPU machine where benchmarks/cuda_build_check.sh runs, no libnvrtc:
    torch's own copy is in its nvidia-* wheels) cannot configure."""
    if shutil.which("cmake") is None:
        return "cmake is not installed"
    if torch.version.cuda:
        home = _cuda_home()
        libdirs = [Path(home, d) for d in ("lib64", "lib", "targets/x86_64-linux/lib")] if home else []
        missing = [lib for lib in ("cudart", "nvrtc") if not any(any(d.glob(f"lib{lib}.so*")) for d in libdirs)]
        if missing:
            return (
                f"torch {torch.__version__} is a CUDA build, whose CMake config links the CUDA toolkit's "
                f"libraries, and the toolkit at CUDA_HOME={home} lacks "
                + ", ".join(f"lib{lib}.so" for lib in missing)
            )
    return None


@pytest.mark.skipif(_cmake_skip_reason() is not None, reason=str(_cmake_skip_reason()))
def test_cmake_library_builds_and_loads(tmp_path):
    """CMakeLists.txt builds the same sources into a library that torch.ops.load_library loads
    (in a process that never imports fastgan, which registers the same namespace)."""
    build = tmp_path / "build"
    configure = subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
         # a CUDA torch: the toolkit torch's extensions use, not one guessed from an nvcc on PATH
         *([f"-DCUDA_TOOLKIT_ROOT_DIR={_cuda_home()}"] if torch.version.cuda and _cuda_home() else [])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run(
        ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)], capture_output=True, text=True, timeout=1200
    )
    assert compile_.returncode == 0, compile_.stdout[-4000:] + compile_.stderr[-4000:]
    library = build / "libfastgan.so"
    assert library.exists()
    r = _python(f"import torch\ntorch.ops.load_library({str(library)!r})\n" + _CHECK_OPS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@needs_extension
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["bce", "wgan", "lsgan", "hinge", "margin"])
def test_adversarial_vector_math_over_a_wide_range(kind, dtype):
    """The kernels' vector softplus / sigmoid — on an AVX2 CPU the fp32 bce sum with the
    hand-written vector exp and log1p, everything else with at::vec::Vectorized and Sleef's: check
    them element by element (through the gradient) and in sum over [-100, 100], and at ±inf/NaN
    against the float64 reference."""
    from fastgan.ops.adversarial_loss import reference
    fp64 = dtype == torch.float64
    # fp32: ~1 ulp of fp32 per term; fp64: ~1 ulp of fp64 per term, and another summation order
    rtol, atol = (1e-12, 1e-12) if fp64 else (2e-6, 1e-5)
    x = torch.cat([torch.linspace(-100, 100, 40001, dtype=dtype),
                   torch.tensor([0.0, 1e-30, -1e-30, 1e-8, -1e-8, 88.5, -88.5, 709.0, -709.0][: 9 if fp64 else 7],
                                dtype=dtype)])
    x = x[:, None].requires_grad_(True)
    for args in ((x, None), (None, x)):
        out = torch.ops.fastgan.adversarial_loss(*args, kind, 0.75, -0.25, 1.5)
        x64 = x.detach().double().requires_grad_(True)
        ref = reference(*[x64 if a is not None else None for a in args], kind, 0.75, -0.25, 1.5)
        # the terms reach ~100 and cancel in sum for wgan/margin: an absolute floor on the mean
        torch.testing.assert_close(out.double(), ref, rtol=rtol, atol=atol)
        (g,) = torch.autograd.grad(out, x)
        (g64,) = torch.autograd.grad(ref, x64)
        # per element; values below the dtype's normal range (exp of < -87.3 in fp32) may come
        # out as any number under that bound
        # (fp64: the reference's F.softplus is linear beyond 20, so its gradient there is 1 where
        # the exact sigmoid is 1 − e^-20: a relative 2.1e-9 the kernels are right to differ by)
        torch.testing.assert_close(g.double(), g64, rtol=3e-9 if fp64 else rtol, atol=torch.finfo(dtype).tiny)
    special = torch.tensor([[float("inf")], [-float("inf")], [float("nan")], [20.0], [-20.0], [0.0], [1.0], [-1.0]],
                           dtype=dtype)
    for i in range(len(special)):
        t = special[i : i + 1].expand(16, 1).clone().requires_grad_(True)  # 16: whole AVX2 vectors
        for args in ((t, None), (None, t)):
            out = torch.ops.fastgan.adversarial_loss(*args, kind, 1.0, 0.0, 1.0)
            ref = reference(*args, kind, 1.0, 0.0, 1.0)
            torch.testing.assert_close(out, ref, equal_nan=True, rtol=1e-6, atol=0)
            (g,) = torch.autograd.grad(out, t)
            (gr,) = torch.autograd.grad(ref, t)
            torch.testing.assert_close(g, gr, equal_nan=True, rtol=1e-6, atol=0)


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and Path(root, "bin", "nvcc").exists():
            return str(Path(root, "bin", "nvcc"))
    return None


@pytest.mark.skipif(_nvcc() is None, reason="nvcc is not installed")
def test_shared_terms_compile_for_the_gpu(tmp_path):
    """csrc/common/terms.h is the one definition of the element-wise math for the CPU and the
    CUDA kernels: every function compiles as __host__ __device__ code with nvcc."""
    source = tmp_path / "terms_check.cu"
    source.write_text(textwrap.dedent(f"""
        #include "{ROOT / 'csrc' / 'common' / 'terms.h'}"
        using namespace fastgan::terms;
        template <typename T>
        __global__ void all_terms(const T* x, T* out) {{
          const T v = x[threadIdx.x];
          T s = softplus(v) + sigmoid(v) + relu(v) + relu_grad(v) + sign(v);
          s += adv_term<kBCE, true>(v, T(1), T(1)) + adv_term_grad<kBCE, false>(v, T(1), T(1));
          s += adv_term<kWGAN, true>(v, T(1), T(1)) + adv_term_grad<kLSGAN, true>(v, T(1), T(1));
          s += adv_term<kHinge, false>(v, T(1), T(1)) + adv_term_grad<kMargin, false>(v, T(1), T(1));
          s += penalty_phi(v, true) + penalty_phi_grad(v, false) + penalty_grad_scale(v, T(1), true, T(1), T(4));
          s += rec_term(v, 1) + rec_term_grad(v, 2) + lerp(v, T(2), T(0.5));
          out[threadIdx.x] = s;
        }}
        template __global__ void all_terms<float>(const float*, float*);
        template __global__ void all_terms<double>(const double*, double*);
        """))
    r = subprocess.run(
        [_nvcc(), "-std=c++17", "-arch=sm_90", "-c", str(source), "-o", str(tmp_path / "terms_check.o")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
