"""The CUDA kernels (csrc/cuda) as far as a machine without a GPU can check them.

Every ``.cu`` compiles with nvcc for sm_90 under the flags torch's CUDAExtension and setup.py use,
warnings as errors; the torch glue ``bindings.cpp`` compiles against the installed torch's headers
(with a CPU build of torch, a stub stands in for the one generated CUDA header it lacks); every
launcher that the glue calls is defined by the ``.cu`` objects with exactly the declared signature
(mangled names compared, so a drifted parameter type fails here rather than at import); the glue
registers every operator declared in csrc/fastgan.cpp; setup.py builds all of it into a
CUDAExtension when torch has CUDA. Running the kernels needs a GPU: the backend-parametrised
kernel suite does that where one is present.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.utils.cpp_extension as cpp_extension

ROOT = Path(__file__).resolve().parent.parent
CUDA_DIR = ROOT / "csrc" / "cuda"
CU_FILES = sorted(CUDA_DIR.glob("*.cu"))
OPERATORS = ("interpolate", "grad_norm_penalty", "reconstruction_error", "adversarial_loss")

# The flags torch adds to every nvcc command of a CUDAExtension (no implicit half conversions,
# relaxed constexpr), as this torch defines them.
TORCH_NVCC_FLAGS = list(
    getattr(
        cpp_extension,
        "COMMON_NVCC_FLAGS",
        [
            "-D__CUDA_NO_HALF_OPERATORS__",
            "-D__CUDA_NO_HALF_CONVERSIONS__",
            "-D__CUDA_NO_BFLOAT16_CONVERSIONS__",
            "-D__CUDA_NO_HALF2_OPERATORS__",
            "--expt-relaxed-constexpr",
        ],
    )
)
# setup.py's nvcc flags, sm_90 (the H100/H200 architecture), warnings as errors
NVCC_FLAGS = [
    "-std=c++17", "-arch=sm_90", "-O3", "-lineinfo", "-DFASTGAN_WITH_CUDA", *TORCH_NVCC_FLAGS,
    "--Werror", "all-warnings", "-Xcompiler", "-Wall,-Wextra",
]


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), cpp_extension.CUDA_HOME, "/usr/local/cuda"):
        if root and Path(root, "bin", "nvcc").exists():
            return str(Path(root, "bin", "nvcc"))
    return None


def _cuda_include() -> Path | None:
    """The CUDA toolkit's include directory (cuda_runtime_api.h): next to nvcc or under CUDA_HOME."""
    nvcc = _nvcc()
    if nvcc is None:
        return None
    roots = [Path(nvcc).resolve().parent.parent]
    roots += [Path(r) for r in (os.environ.get("CUDA_HOME"), cpp_extension.CUDA_HOME, "/usr/local/cuda") if r]
    for root in roots:
        for inc in (root / "include", root / "targets" / "x86_64-linux" / "include"):
            if (inc / "cuda_runtime_api.h").exists():
                return inc
    return None


needs_nvcc = pytest.mark.skipif(_nvcc() is None, reason="nvcc is not installed (set CUDA_HOME or put it on PATH)")


def _nm(obj: Path, *args: str) -> list[str]:
    r = subprocess.run(["nm", *args, str(obj)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def _symbols(lines: list[str], kinds: str) -> set[str]:
    """Names from nm output lines "[addr] KIND name" whose kind letter is in kinds."""
    out = set()
    for line in lines:
        parts = line.split(maxsplit=2) if line[:1] != " " else ["", *line.split(maxsplit=1)]
        if len(parts) == 3 and parts[1] in kinds:
            out.add(parts[2])
    return out


@pytest.fixture(scope="module")
def cu_objects(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Every .cu compiled to an object, all at once: {file name: (return code, output, object)}."""
    if _nvcc() is None:
        pytest.skip("nvcc is not installed")
    out_dir = tmp_path_factory.mktemp("cuda_objects")
    procs = {}
    for cu in CU_FILES:
        obj = out_dir / (cu.stem + ".o")
        cmd = [_nvcc(), *NVCC_FLAGS, "-c", str(cu), "-o", str(obj)]
        procs[cu.name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), obj)
    results = {}
    for name, (proc, obj) in procs.items():
        output, _ = proc.communicate(timeout=900)
        results[name] = (proc.returncode, output, obj)
    return results


@pytest.fixture(scope="module")
def bindings_object(tmp_path_factory) -> Path:
    """csrc/cuda/bindings.cpp compiled (not linked) against this torch's headers, warnings as errors."""
    cuda_include = _cuda_include()
    if cuda_include is None or shutil.which("g++") is None:
        pytest.skip("the CUDA toolkit headers (next to nvcc) or g++ are not installed")
    out_dir = tmp_path_factory.mktemp("bindings")
    includes = []
    torch_include = Path(cpp_extension.include_paths()[0])
    if not (torch_include / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").exists():
        # a CPU build of torch ships c10/cuda but not this generated header; it only defines
        # build-configuration macros that the declarations used here do not need
        stub = out_dir / "stub" / "c10" / "cuda" / "impl"
        stub.mkdir(parents=True)
        (stub / "cuda_cmake_macros.h").write_text("#pragma once\n")
        includes += ["-isystem", str(out_dir / "stub")]
    for path in cpp_extension.include_paths():
        includes += ["-isystem", path]
    includes += ["-isystem", str(cuda_include)]
    obj = out_dir / "bindings.o"
    r = subprocess.run(
        ["g++", "-std=c++17", "-O0", "-Wall", "-Wextra", "-Werror", *includes, "-c", str(CUDA_DIR / "bindings.cpp"),
         "-o", str(obj)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return obj


def test_one_cu_file_per_operator():
    assert {cu.stem for cu in CU_FILES} == set(OPERATORS)
    for cu in CU_FILES:
        text = cu.read_text()
        assert "torch" not in re.findall(r'#include\s*[<"]([^>"]+)', text), f"{cu.name} must not include torch headers"
        assert re.search(r'#include\s*"(common\.cuh|launchers\.h)"', text), f"{cu.name} must include launchers.h"
    assert not re.search(r"#include\s*[<\"](torch|ATen|c10)/", (CUDA_DIR / "common.cuh").read_text())
    assert not re.search(r"#include\s*[<\"](torch|ATen|c10)/", (CUDA_DIR / "launchers.h").read_text())
    assert '#include "../common/terms.h"' in (CUDA_DIR / "common.cuh").read_text(), "the math comes from terms.h"


@needs_nvcc
@pytest.mark.parametrize("name", [cu.name for cu in CU_FILES])
def test_cu_compiles_for_sm90(cu_objects, name):
    returncode, output, obj = cu_objects[name]
    assert returncode == 0, output
    assert obj.stat().st_size > 0


def _declared_launchers() -> set[str]:
    text = (CUDA_DIR / "launchers.h").read_text()
    return set(re.findall(r"^(?:cudaError_t|std::size_t)\s+(\w+)\(", text, flags=re.M))


def _function_names(demangled: set[str], namespace: str) -> set[str]:
    return {m.group(1) for s in demangled if (m := re.match(re.escape(namespace) + r"(\w+)\(", s))}


@needs_nvcc
def test_launchers_defined_as_declared_and_called(cu_objects, bindings_object):
    """The glue's calls link against the .cu definitions: the same mangled names."""
    for name, (returncode, output, _) in cu_objects.items():
        assert returncode == 0, f"{name} did not compile:\n{output}"
    declared = _declared_launchers()
    assert {f"{op}_forward" for op in OPERATORS} | {f"{op}_backward" for op in OPERATORS} <= declared

    defined_mangled, defined = set(), set()
    for _, _, obj in cu_objects.values():
        defined_mangled |= _symbols(_nm(obj, "--defined-only"), "T")
        defined |= _symbols(_nm(obj, "--defined-only", "-C"), "T")
    # every launcher is defined once with external linkage, and nothing else in fastgan::cuda is
    assert _function_names(defined, "fastgan::cuda::") == declared

    needed_mangled = {s for s in _symbols(_nm(bindings_object, "-u"), "U") if s.startswith("_ZN7fastgan")}
    needed = _function_names(_symbols(_nm(bindings_object, "-u", "-C"), "U"), "fastgan::cuda::")
    assert needed == declared, "bindings.cpp calls every launcher"
    cuda_needed = {s for s in needed_mangled if s.startswith("_ZN7fastgan4cuda")}
    assert cuda_needed <= defined_mangled, f"declared but not defined as called: {cuda_needed - defined_mangled}"

    # anything else the glue needs from fastgan (the kind codes of the CPU kernels) is in the
    # built extension, when there is one here
    others = needed_mangled - cuda_needed
    built = sorted((ROOT / "fastgan").glob("_C*.so"))
    if built:
        exported = _symbols(_nm(built[0], "-D", "--defined-only"), "TtWw")
        assert others <= exported, f"not defined by the extension: {others - exported}"


def _schema_ops() -> set[str]:
    text = (ROOT / "csrc" / "fastgan.cpp").read_text()
    return set(re.findall(r'm\.def\(\s*"(\w+)\(', text))


def test_bindings_register_every_operator_for_cuda():
    ops = _schema_ops()
    assert {"interpolate", "interpolate_backward", "grad_norm_penalty_backward", "adversarial_loss"} <= ops
    text = (CUDA_DIR / "bindings.cpp").read_text()
    assert "TORCH_LIBRARY_IMPL(fastgan, CUDA, m)" in text
    registered = re.findall(r'm\.impl\(\s*"(\w+)",\s*&ops::(\w+)\)', text)
    assert sorted(name for name, _ in registered) == sorted(ops), "each schema once, none other"
    assert all(name == fn for name, fn in registered), "each operator bound to the function of its name"
    # launched on torch's current stream, under a device guard
    assert "getCurrentCUDAStream()" in text and "CUDAGuard" in text
    assert ".item<" not in text and ".item()" not in text, "the CUDA path never reads a value on the host"


@needs_nvcc
def test_bindings_compile_against_torch_headers(bindings_object):
    symbols = _symbols(_nm(bindings_object, "--defined-only", "-C"), "TtWw")
    assert any(s.startswith("fastgan::cuda::ops::grad_norm_penalty_backward(") for s in symbols)


def test_setup_builds_the_cuda_kernels_when_torch_has_cuda(monkeypatch, tmp_path):
    """setup.py's CUDA branch, run with a torch that reports CUDA and an nvcc present."""
    import setuptools

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").write_text("")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(tmp_path))
    monkeypatch.delenv("FASTGAN_NO_EXTENSION", raising=False)
    monkeypatch.delenv("FASTGAN_NO_CUDA", raising=False)
    monkeypatch.chdir(ROOT)
    captured: list[dict] = []
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.append(kw))
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    (ext,) = captured[-1]["ext_modules"]
    sources = {Path(s).as_posix() for s in ext.sources}
    assert {f"csrc/cuda/{op}.cu" for op in OPERATORS} | {"csrc/cuda/bindings.cpp", "csrc/fastgan.cpp"} <= sources
    nvcc = ext.extra_compile_args["nvcc"]
    assert {"-O3", "-lineinfo", "-DFASTGAN_WITH_CUDA"} <= set(nvcc)
    assert "--use_fast_math" not in nvcc and not any(f.startswith("-arch") for f in nvcc), "arch from torch"
    assert "-DFASTGAN_WITH_CUDA" in ext.extra_compile_args["cxx"]

    # and without CUDA in torch, or with FASTGAN_NO_CUDA=1, the CPU kernels only
    monkeypatch.setenv("FASTGAN_NO_CUDA", "1")
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    (ext,) = captured[-1]["ext_modules"]
    assert not any("csrc/cuda" in Path(s).as_posix() for s in ext.sources)
    monkeypatch.delenv("FASTGAN_NO_CUDA")
    monkeypatch.setattr(torch.version, "cuda", None)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    (ext,) = captured[-1]["ext_modules"]
    assert not any("csrc/cuda" in Path(s).as_posix() for s in ext.sources)
    assert "-DFASTGAN_WITH_CUDA" not in ext.extra_compile_args["cxx"]
