"""fastgan's build. Install with ``pip install --no-build-isolation -e .`` after installing torch.

``--no-build-isolation`` matters: with build isolation pip would fetch a torch of its own choosing
into the build environment (on a CPU machine, a multi-GB CUDA build). torch is required but never
pinned to one release: a CPU machine installs the CPU build first, a GPU user keeps their own.
"""

import sys

from setuptools import find_packages, setup

try:  # torch must be there before fastgan is installed: pip must never choose a torch build
    import torch  # noqa: F401
except ImportError:
    sys.exit(
        "fastgan needs PyTorch installed first. On a CPU-only machine: pip install torch==2.13.0 "
        "(or another CPU build); on a GPU machine keep your CUDA build. Then: "
        "pip install --no-build-isolation -e ."
    )

setup(
    name="fastgan",
    version="0.1.0",
    description="Fused loss kernels for seven GAN families, with a plain-PyTorch reference",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["fastgan", "fastgan.*"]),
    install_requires=["torch>=2.6"],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["fastgan = fastgan.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
