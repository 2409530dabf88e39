"""fastgan's build. Install with ``pip install --no-build-isolation -e .`` after installing torch.

``--no-build-isolation`` matters: with build isolation pip would fetch a torch of its own choosing
into the build environment (on a CPU machine, a multi-GB CUDA build). torch is required but never
pinned to one release: a CPU machine installs the CPU build first, a GPU user keeps their own.

The extension ``fastgan._C`` is built from ``csrc/``: a ``CppExtension`` with the CPU kernels, or
a ``CUDAExtension`` that adds the CUDA kernels when torch has CUDA and nvcc is found. Set
``FASTGAN_NO_EXTENSION=1`` to install the pure-Python reference path only, and
``FASTGAN_NATIVE=1`` to compile for this machine's CPU (``-march=native``), ``FASTGAN_NO_CUDA=1``
to leave the CUDA kernels out of a build with a CUDA torch.

The sources compile in parallel with ninja (``pip install ninja`` first: without it torch's
BuildExtension falls back to compiling one source at a time, and this script says so). ``MAX_JOBS``
sets the number of parallel compile jobs; unset, ninja picks its own (the cores + 2).
"""

import glob
import os
import sys

from setuptools import find_packages, setup

try:  # torch must be there before fastgan is installed: pip must never choose a torch build
    import torch
except ImportError:
    sys.exit(
        "fastgan needs PyTorch installed first. On a CPU-only machine: pip install torch==2.13.0 "
        "(or another CPU build); on a GPU machine keep your CUDA build. Then: "
        "pip install --no-build-isolation -e ."
    )


def _extensions():
    if os.environ.get("FASTGAN_NO_EXTENSION") == "1":
        return [], {}
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension, is_ninja_available

    sources = ["csrc/fastgan.cpp", "csrc/autograd.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    cxx = ["-O3", "-fopenmp", "-ffp-contract=off", "-DFASTGAN_PYTHON_MODULE"]
    if os.environ.get("FASTGAN_NATIVE") == "1":
        cxx.append("-march=native")
    # CUDA kernels (csrc/cuda/*.cu) and their torch glue (csrc/cuda/bindings.cpp), when torch is a
    # CUDA build and nvcc is there; FASTGAN_NO_CUDA=1 builds the CPU kernels only. GPU
    # architectures: torch's TORCH_CUDA_ARCH_LIST, by default those of the visible GPUs. No
    # --use_fast_math: the kernels keep IEEE division, sqrt, exp and log1p.
    cuda_sources = sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.cpp"))
    nvcc_found = CUDA_HOME is not None and any(
        os.path.exists(os.path.join(CUDA_HOME, "bin", n)) for n in ("nvcc", "nvcc.exe")
    )
    with_cuda = (
        os.environ.get("FASTGAN_NO_CUDA") != "1" and bool(torch.version.cuda) and nvcc_found and bool(cuda_sources)
    )
    if with_cuda:
        ext = CUDAExtension(
            "fastgan._C",
            sources + cuda_sources,
            extra_compile_args={
                "cxx": cxx + ["-DFASTGAN_WITH_CUDA"],
                # --fmad=false: no contraction of a*b+c into FMA, like the CPU build
                # (-ffp-contract=off) and the Triton kernels (enable_fp_fusion=False)
                "nvcc": ["-O3", "-lineinfo", "--fmad=false", "-DFASTGAN_WITH_CUDA"],
            },
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension("fastgan._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"])
    if not is_ninja_available():
        print(
            "fastgan: ninja is not installed, so the extension's sources compile one at a time "
            "(pip install ninja for a parallel build)",
            file=sys.stderr,
        )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()

setup(
    name="fastgan",
    version="0.1.0",
    description="Fused loss kernels for seven GAN families, with a plain-PyTorch reference",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fastgan", "fastgan.*"]),
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    install_requires=["torch>=2.6"],
    extras_require={
        # fastgan train / bench: plots, progress bars, the bundled 8x8 digits
        "train": ["matplotlib", "tqdm", "scikit-learn"],
        "triton": ["triton>=3.6"],
        "test": ["pytest>=7", "hypothesis", "pytest-benchmark", "matplotlib", "tqdm", "scikit-learn", "triton>=3.6"],
    },
    entry_points={"console_scripts": ["fastgan = fastgan.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
