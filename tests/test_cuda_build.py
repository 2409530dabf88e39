"""The CUDA kernels (csrc/cuda) as far as a machine without a GPU can check them.

Every ``.cu`` compiles with nvcc for sm_90 under the flags torch's CUDAExtension and setup.py use,
warnings as errors; the torch glue ``bindings.cpp`` compiles against the installed torch's headers
(with a CPU build of torch, a stub stands in for the one generated CUDA header it lacks); every
launcher that the glue calls is defined by the ``.cu`` objects with exactly the declared signature
(mangled names compared, so a drifted parameter type fails here rather than at import); the glue
registers every operator declared in csrc/fastgan.cpp; setup.py builds all of it into a
CUDAExtension when torch has CUDA. And the kernels themselves run on the CPU: the .cu sources,
built by the host compiler against a stand-in for the CUDA execution model (tests/cuda_emu.h),
are called through their launchers and compared with the reference — their logic, not the GPU's
timing or memory model, which the backend-parametrised kernel suite checks where a GPU is present.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
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
_OP_MODULES = {op: importlib.import_module(f"fastgan.ops.{op}") for op in OPERATORS}
GNP_REFERENCE = _OP_MODULES["grad_norm_penalty"].reference
REC_REFERENCE = _OP_MODULES["reconstruction_error"].reference
ADV_REFERENCE = _OP_MODULES["adversarial_loss"].reference
ADV_KINDS = _OP_MODULES["adversarial_loss"].KINDS  # the order of the kind codes in csrc/common/terms.h
INTERP_REFERENCE = _OP_MODULES["interpolate"].reference

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
    "-std=c++17", "-arch=sm_90", "-O3", "-lineinfo", "--fmad=false", "-DFASTGAN_WITH_CUDA", *TORCH_NVCC_FLAGS,
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


def _runtime_include() -> Path | None:
    """Headers with cuda_runtime_api.h for the glue: the toolkit's, else the copy Triton ships."""
    found = _cuda_include()
    if found is not None:
        return found
    spec = importlib.util.find_spec("triton")
    if spec is not None and spec.origin is not None:
        inc = Path(spec.origin).parent / "backends" / "nvidia" / "include"
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
    cuda_include = _runtime_include()
    if cuda_include is None or shutil.which("g++") is None:
        pytest.skip("no CUDA runtime headers (a CUDA toolkit, or Triton's copy) or no g++")
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

    # anything else the glue needs from fastgan (nothing today: the shared preparation,
    # csrc/common/prepare.h, is inline) is in the built extension, when there is one here
    others = needed_mangled - cuda_needed
    built = sorted((ROOT / "fastgan").glob("_C*.so"))
    if built:
        exported = _symbols(_nm(built[0], "-D", "--defined-only"), "TtWw")
        assert others <= exported, f"not defined by the extension: {others - exported}"


def _schema_ops() -> set[str]:
    """The operators with device kernels: every schema but the composite backwards
    (``_<op>_backward_composite``, implemented once for every device from Python)."""
    text = (ROOT / "csrc" / "fastgan.cpp").read_text()
    return {n for n in re.findall(r'm\.def\(\s*"(\w+)\(', text) if not n.endswith("_backward_composite")}


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
    assert {"-O3", "-lineinfo", "--fmad=false", "-DFASTGAN_WITH_CUDA"} <= set(nvcc)
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


# ------------------------------------------------------------------ the kernels, run on the CPU
# The .cu sources, built by the host compiler against tests/cuda_emu.h (a CPU stand-in for blocks,
# barriers, warp shuffles and atomics), run on CPU tensors through their raw-pointer launchers and
# are compared with the float64 reference and its autograd gradients. This checks the kernels'
# logic (chunking, tails, vector / scalar paths, reductions, the last-block hand-over) on every
# machine; the GPU suite checks the rest where there is a GPU.
def _emulated_sources(out_dir: Path) -> list[Path]:
    sources = []
    for cu in CU_FILES:
        text = cu.read_text()
        text = re.sub(r"(\w+<[^;<>]*>)<<<([^;]*?)>>>\(", r"::emu::launch(\2)(\1, ", text)
        assert "<<<" not in text, f"{cu.name}: a launch the emulator cannot rewrite"
        src = out_dir / f"{cu.stem}.emu.cpp"
        src.write_text(f'#include "cuda_emu.h"\n#line 1 "{cu}"\n{text}')
        sources.append(src)
    return sources


class _Kernels:
    """The launchers of a shared library built from csrc/cuda, called on contiguous CPU tensors."""

    class DeviceVector(ctypes.Structure):
        _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("stride", ctypes.c_int64)]

    DTYPES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}

    def __init__(self, library: Path):
        self.lib = ctypes.CDLL(str(library))
        self.symbols = _symbols(_nm(library, "-D", "--defined-only"), "T")

    def _fn(self, name: str, restype=ctypes.c_int):
        prefix = f"_ZN7fastgan4cuda{len(name)}{name}E"
        (mangled,) = [s for s in self.symbols if s.startswith(prefix)]
        f = getattr(self.lib, mangled)
        f.restype = restype
        return f

    def _call(self, name: str, *args) -> None:
        assert self._fn(name)(*args) == 0, f"{name} returned an error"

    @staticmethod
    def _p(t):
        if t is None:
            return ctypes.c_void_p(None)
        assert t.is_contiguous()
        return ctypes.c_void_p(t.data_ptr())

    def _vector(self, t: torch.Tensor):
        return self.DeviceVector(t.data_ptr(), self.DTYPES[t.dtype], t.stride(0) if t.dim() == 1 else 0)

    def _dt(self, t):
        return ctypes.c_int(self.DTYPES[t.dtype])

    @staticmethod
    def _rows(t):
        return ctypes.c_int64(t.shape[0]), ctypes.c_int64(t.numel() // t.shape[0])

    def _workspace(self, name: str, *args):
        n = self._fn(f"{name}_workspace_bytes", ctypes.c_size_t)(*args)
        return torch.full((max(n, 1),), 0xAB, dtype=torch.uint8)  # garbage: the launcher clears what it needs

    def grad_norm_penalty_forward(self, g, center, one_sided):
        B, M = self._rows(g)
        # the penalty's norms are fp64 for every input dtype (docs/design.md §6)
        loss, norms = torch.empty((), dtype=g.dtype), torch.empty(g.shape[0], dtype=torch.float64)
        ws = self._workspace("grad_norm_penalty", B, M, self._dt(g))
        self._call("grad_norm_penalty_forward", self._p(g), B, M, self._dt(g), ctypes.c_double(center),
                   ctypes.c_bool(one_sided), self._p(loss), self._p(norms), self._p(ws), None)
        return loss, norms

    def grad_norm_penalty_backward(self, gout, g, norms, center, one_sided):
        B, M = self._rows(g)
        dg = torch.empty_like(g)
        self._call("grad_norm_penalty_backward", self._vector(gout), self._p(g), self._vector(norms), B, M,
                   self._dt(g), ctypes.c_double(center), ctypes.c_bool(one_sided), self._p(dg), None)
        return dg

    def reconstruction_error(self, x, r, p):
        B, M = self._rows(x)
        out = torch.empty(x.shape[0], dtype=x.dtype)
        ws = self._workspace("reconstruction_error", B, M, self._dt(x))
        self._call("reconstruction_error_forward", self._p(x), self._p(r), B, M, self._dt(x), ctypes.c_int(p),
                   self._p(out), self._p(ws), None)
        return out

    def reconstruction_error_backward(self, gout, x, r, p, need_x, need_r):
        B, M = self._rows(x)
        dx = torch.empty_like(x) if need_x else None
        dr = torch.empty_like(x) if need_r else None
        self._call("reconstruction_error_backward", self._vector(gout), self._p(x), self._p(r), B, M, self._dt(x),
                   ctypes.c_int(p), self._p(dx), self._p(dr), None)
        return dx, dr

    def adversarial_loss(self, real, fake, kind, rt, ft, margin):
        any_ = real if real is not None else fake
        n_real = ctypes.c_int64(real.numel() if real is not None else 0)
        n_fake = ctypes.c_int64(fake.numel() if fake is not None else 0)
        loss = torch.empty((), dtype=any_.dtype)
        ws = self._workspace("adversarial_loss", n_real, n_fake, self._dt(any_))
        self._call("adversarial_loss_forward", self._p(real), n_real, self._p(fake), n_fake, self._dt(any_),
                   ctypes.c_int(ADV_KINDS.index(kind)), ctypes.c_double(rt), ctypes.c_double(ft),
                   ctypes.c_double(margin), self._p(loss), self._p(ws), None)
        return loss

    def adversarial_loss_backward(self, gout, real, fake, kind, rt, ft, margin):
        any_ = real if real is not None else fake
        dreal = torch.empty_like(real) if real is not None else None
        dfake = torch.empty_like(fake) if fake is not None else None
        self._call("adversarial_loss_backward", self._vector(gout), self._p(real),
                   ctypes.c_int64(real.numel() if real is not None else 0), self._p(fake),
                   ctypes.c_int64(fake.numel() if fake is not None else 0), self._dt(any_),
                   ctypes.c_int(ADV_KINDS.index(kind)), ctypes.c_double(rt), ctypes.c_double(ft),
                   ctypes.c_double(margin), self._p(dreal), self._p(dfake), None)
        return dreal, dfake

    def interpolate(self, real, fake, alpha):
        B, M = self._rows(real)
        out = torch.empty_like(real)
        self._call("interpolate_forward", self._p(real), self._p(fake), self._vector(alpha), B, M, self._dt(real),
                   self._p(out), None)
        return out

    def interpolate_backward(self, grad, real, fake, alpha, need_real, need_fake, need_alpha):
        B, M = self._rows(grad)
        dreal = torch.empty_like(grad) if need_real else None
        dfake = torch.empty_like(grad) if need_fake else None
        dalpha = torch.empty_like(alpha) if need_alpha else None
        ws = self._workspace("interpolate_backward", B, M, self._dt(grad))
        self._call("interpolate_backward", self._p(grad), self._p(real if need_alpha else None),
                   self._p(fake if need_alpha else None), self._vector(alpha), B, M, self._dt(grad), self._p(dreal),
                   self._p(dfake), self._p(dalpha), self._p(ws), None)
        return dreal, dfake, dalpha


def _emulated_glue(out_dir: Path) -> Path:
    """bindings.cpp with the CUDA parts of torch replaced by tests/cuda_emu_torch.h, registering
    its functions as the CPU kernels of a test library ``fastgan_emu`` with fastgan's schemas."""
    text = (CUDA_DIR / "bindings.cpp").read_text()
    text, n = re.subn(r"#include <c10/cuda/\w+\.h>\n", "", text)
    assert n >= 1
    text = text.replace('#include "launchers.h"', '#include "cuda_emu_torch.h"\n#include "launchers.h"', 1)
    text, n = re.subn(r"\.is_cuda\(\)", ".is_cpu()", text)
    assert n >= 1
    text, n = re.subn(r"TORCH_LIBRARY_IMPL\(fastgan, CUDA, m\)", "TORCH_LIBRARY_IMPL(fastgan_emu, CPU, m)", text)
    assert n == 1
    defs = re.findall(r'm\.def\(((?:\s*"[^"]*")+)\s*\);', (ROOT / "csrc" / "fastgan.cpp").read_text())
    defs = [d for d in defs if "_backward_composite(" not in d]  # the ops with device kernels
    assert len(defs) == len(_schema_ops())
    text += "\nTORCH_LIBRARY(fastgan_emu, m) {\n" + "".join(f"  m.def({d.strip()});\n" for d in defs) + "}\n"
    src = out_dir / "bindings.emu.cpp"
    src.write_text(f'#line 1 "{CUDA_DIR / "bindings.cpp"}"\n{text}')
    return src


@pytest.fixture(scope="module")
def emulated_objects(tmp_path_factory) -> tuple[list[Path], Path]:
    """The kernels and the glue compiled for the CPU stand-in: (kernel objects, glue object)."""
    cuda_include = _cuda_include()
    if cuda_include is None or shutil.which("g++") is None:
        pytest.skip("the CUDA toolkit headers (next to nvcc) or g++ are not installed")
    out_dir = tmp_path_factory.mktemp("emulated")
    common = ["g++", "-O1", "-fPIC", "-pthread", "-w", "-I", str(ROOT / "tests"), "-I", str(CUDA_DIR)]
    jobs = [([*common, "-std=c++20", "-isystem", str(cuda_include)], src) for src in _emulated_sources(out_dir)]
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    torch_includes = [flag for path in cpp_extension.include_paths() for flag in ("-isystem", path)]
    glue = _emulated_glue(out_dir)
    jobs.append(([*common, "-std=c++17", abi, *torch_includes, "-isystem", str(cuda_include)], glue))
    procs = []
    for flags, src in jobs:
        cmd = [*flags, "-c", str(src), "-o", str(src.with_suffix(".o"))]
        procs.append((src, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for src, proc in procs:
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{src.name}:\n{output}"
    return [src.with_suffix(".o") for _, src in jobs[:-1]], glue.with_suffix(".o")


def _link(objects: list[Path], library: Path, *flags: str) -> Path:
    r = subprocess.run(["g++", "-shared", "-pthread", *map(str, objects), "-o", str(library), *flags],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return library


@pytest.fixture(scope="module")
def kernels(emulated_objects) -> _Kernels:
    """The launchers alone, called through ctypes."""
    objects, _ = emulated_objects
    return _Kernels(_link(objects, objects[0].parent / "libfastgan_cuda_emulated.so"))


@pytest.fixture(scope="module")
def emulated_ops(emulated_objects):
    """The glue and the kernels as torch.ops.fastgan_emu.*, taking CPU tensors."""
    objects, glue = emulated_objects
    torch_lib = Path(torch.__file__).resolve().parent / "lib"
    library = _link([glue, *objects], glue.parent / "libfastgan_glue_emulated.so", f"-L{torch_lib}",
                    f"-Wl,-rpath,{torch_lib}", "-lc10", "-ltorch_cpu", "-ltorch")
    torch.ops.load_library(str(library))
    return torch.ops.fastgan_emu


F32, F64, F16, BF16 = torch.float32, torch.float64, torch.float16, torch.bfloat16
LONG = (2, 3, 100, 70)  # 21000 elements a row: several blocks a row in every dtype
ODD = (3, 5, 7, 9)  # rows of 315 elements: the scalar path (rows not 16-byte aligned), partial groups


def _random(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _misaligned(t: torch.Tensor) -> torch.Tensor:
    """The same values at an address that is not 16-byte aligned (the launchers' scalar path)."""
    buf = torch.empty(t.numel() + 8, dtype=t.dtype)
    out = buf[1 : 1 + t.numel()].view(t.shape)
    out.copy_(t)
    assert out.data_ptr() % 16 != 0
    return out


def _leaf64(t: torch.Tensor) -> torch.Tensor:
    """A float64 copy that requires grad (never the input itself, even when it is float64)."""
    return t.to(F64, copy=True).requires_grad_()


def _reference_grads(out, inputs, gout):
    return torch.autograd.grad(out, inputs, gout)


@pytest.mark.parametrize("dtype", [F32, F64, F16, BF16], ids=str)
@pytest.mark.parametrize(
    "shape, center, one_sided",
    [(LONG, 1.0, False), (ODD, 18.0, True), ((1, 3, 130, 130), 0.5, False), ((1, 37), 0.5, False)],  # last: 1 block
)
def test_emulated_grad_norm_penalty(kernels, dtype, shape, center, one_sided):
    from kernel_cases import assert_matches

    g = _random(shape, dtype, 1)
    loss, norms = kernels.grad_norm_penalty_forward(g, center, one_sided)
    g64 = _leaf64(g)
    ref = GNP_REFERENCE(g64, center, one_sided)
    assert_matches(loss, ref.detach().to(dtype), dtype, "loss")
    ref_norms = g64.detach().flatten(1).norm(dim=1)
    assert_matches(norms, ref_norms.to(norms.dtype), norms.dtype, "norms")
    gout = torch.tensor(0.75, dtype=dtype)
    dg = kernels.grad_norm_penalty_backward(gout, g, norms, center, one_sided)
    (ref_dg,) = _reference_grads(ref, g64, gout.to(F64))
    assert_matches(dg, ref_dg, dtype, "dgrads")


def test_emulated_reductions_are_deterministic_and_path_independent(kernels):
    """Same bits run to run (blocks finish in another order each launch) and whether the rows
    are read with 16-byte vectors or element by element."""
    g = _random(LONG, F32, 2)
    first = kernels.grad_norm_penalty_forward(g, 1.0, False)
    again = kernels.grad_norm_penalty_forward(g, 1.0, False)
    scalar = kernels.grad_norm_penalty_forward(_misaligned(g), 1.0, False)
    for other in (again, scalar):
        assert torch.equal(first[0], other[0]) and torch.equal(first[1], other[1])
    x, r = _random((1, 40000), BF16, 3), _random((1, 40000), BF16, 4)
    out = kernels.reconstruction_error(x, r, 2)
    assert torch.equal(out, kernels.reconstruction_error(_misaligned(x), _misaligned(r), 2))


def test_emulated_nan_propagates(kernels):
    g = _random(LONG, F32, 5)
    g[1, 2, 50, 7] = float("nan")
    loss, norms = kernels.grad_norm_penalty_forward(g, 1.0, False)
    assert loss.isnan() and norms[1].isnan() and not norms[0].isnan()
    dg = kernels.grad_norm_penalty_backward(torch.tensor(1.0), g, norms, 1.0, False)
    assert dg[1].isnan().all() and not dg[0].isnan().any()
    x, r = _random(ODD, F32, 6), _random(ODD, F32, 7)
    x[2, 4, 6, 8] = float("nan")
    out = kernels.reconstruction_error(x, r, 1)
    assert out[2].isnan() and not out[:2].isnan().any()


@pytest.mark.parametrize("dtype, shape", [(F32, LONG), (F16, ODD), (F64, (1, 3, 130, 130)), (BF16, LONG)], ids=str)
@pytest.mark.parametrize("p", [1, 2])
def test_emulated_reconstruction_error(kernels, dtype, shape, p):
    from kernel_cases import assert_matches

    x, r = _random(shape, dtype, 8), _random(shape, dtype, 9)
    out = kernels.reconstruction_error(x, r, p)
    x64, r64 = _leaf64(x), _leaf64(r)
    ref = REC_REFERENCE(x64, r64, p)
    assert_matches(out, ref.detach().to(dtype), dtype, "out")
    # grad_out as autograd hands it over from .mean(): one value expanded over the batch (stride 0)
    gout = torch.tensor(0.5, dtype=dtype).expand(shape[0])
    dx, dr = kernels.reconstruction_error_backward(gout, x, r, p, True, True)
    ref_dx, ref_dr = _reference_grads(ref, (x64, r64), gout.to(F64))
    assert_matches(dx, ref_dx, dtype, "dx")
    assert_matches(dr, ref_dr, dtype, "drecon")
    gout = _random((shape[0],), dtype, 10)
    _, dr = kernels.reconstruction_error_backward(gout, x, r, p, False, True)
    (ref_dr,) = _reference_grads(REC_REFERENCE(x64, r64, p), r64, gout.to(F64))
    assert_matches(dr, ref_dr, dtype, "drecon alone")


ADV_PARAMS = (0.75, -0.25, 1.5)  # real_target, fake_target, margin


@pytest.mark.parametrize("kind", ["bce", "wgan", "lsgan", "hinge", "margin"])
@pytest.mark.parametrize("dtype, real_shape, fake_shape", [
    (F32, (7, 1), (5, 1)),  # one block a side
    (F64, (6,), None),  # one block in all
    (F32, (3, 1, 100, 100), None),  # several blocks, real only
    (BF16, (64, 1, 30, 30), (3, 1, 100, 101)),  # several blocks a side, an odd numel
], ids=str)
def test_emulated_adversarial_loss(kernels, kind, dtype, real_shape, fake_shape):
    from kernel_cases import assert_matches

    real = _random(real_shape, dtype, 11)
    fake = _random(fake_shape, dtype, 12) if fake_shape else None
    loss = kernels.adversarial_loss(real, fake, kind, *ADV_PARAMS)
    real64 = _leaf64(real)
    fake64 = _leaf64(fake) if fake is not None else None
    ref = ADV_REFERENCE(real64, fake64, kind, *ADV_PARAMS)
    # terms of both signs cancel in the sum: the tolerance scales with their magnitude
    scale = float(real64.detach().abs().mean() + (fake64.detach().abs().mean() if fake is not None else 0)) + 1
    assert_matches(loss, ref.detach().to(dtype), dtype, "loss", scale=scale)
    gout = torch.tensor(1.25, dtype=dtype)
    dreal, dfake = kernels.adversarial_loss_backward(gout, real, fake, kind, *ADV_PARAMS)
    inputs = (real64, fake64) if fake is not None else (real64,)
    ref_grads = _reference_grads(ref, inputs, gout.to(F64))
    assert_matches(dreal, ref_grads[0], dtype, "dreal")
    if fake is not None:
        assert_matches(dfake, ref_grads[1], dtype, "dfake")


@pytest.mark.parametrize("dtype, shape", [(F32, LONG), (F16, ODD), (F64, (1, 3, 130, 130)), (BF16, (5, 37))], ids=str)
def test_emulated_interpolate(kernels, dtype, shape):
    from kernel_cases import assert_matches

    real, fake = _random(shape, dtype, 13), _random(shape, dtype, 14)
    alpha = torch.rand(shape[0], generator=torch.Generator().manual_seed(15), dtype=F64).to(dtype)
    out = kernels.interpolate(real, fake, alpha)
    r64, f64, a64 = (_leaf64(t) for t in (real, fake, alpha))
    ref = INTERP_REFERENCE(r64, f64, a64)
    assert_matches(out, ref.detach().to(dtype), dtype, "out")
    grad = _random(shape, dtype, 16)
    ref_grads = _reference_grads(ref, (r64, f64, a64), grad.to(F64))
    dreal, dfake, dalpha = kernels.interpolate_backward(grad, real, fake, alpha, True, True, True)
    scale = float((grad.to(F64) * (real.to(F64) - fake.to(F64))).abs().flatten(1).sum(1).max())
    for got, want, what in zip((dreal, dfake, dalpha), ref_grads, ("dreal", "dfake", "dalpha")):
        assert_matches(got, want, dtype, what, scale=scale if what == "dalpha" else 0.0)
    _, dfake, dalpha = kernels.interpolate_backward(grad, real, fake, alpha, False, True, False)
    assert dalpha is None
    assert_matches(dfake, ref_grads[1], dtype, "dfake alone")


# ----------------------------------------------------- the glue, run on the CPU with the kernels
# bindings.cpp built with CPU stand-ins for torch's CUDA guard, stream and error check: the same
# calls go to torch.ops.fastgan_emu.* (glue + kernels) and to torch.ops.fastgan.* (the CPU
# kernels), which must agree on every output's shape, dtype and strides (the layouts the fake
# impls predict) and on the values.
def _cpu_ops():
    from fastgan import backends

    if backends.extension() is None:
        pytest.skip("fastgan._C is not built here: no CPU kernels to compare the glue with")
    return torch.ops.fastgan


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    out = t.contiguous(memory_format=torch.channels_last)
    assert not out.is_contiguous()
    return out


def _strided(t: torch.Tensor) -> torch.Tensor:
    """The same values in every other element of the last dimension of a larger tensor."""
    big = torch.full((*t.shape[:-1], 2 * t.shape[-1]), float("nan"), dtype=t.dtype)
    out = big[..., ::2]
    out.copy_(t)
    return out


def _assert_same_outputs(emu, cpu, what: str, scale: float = 0.0) -> None:
    from kernel_cases import assert_matches

    emu = emu if isinstance(emu, (tuple, list)) else (emu,)
    cpu = cpu if isinstance(cpu, (tuple, list)) else (cpu,)
    assert len(emu) == len(cpu)
    for i, (e, c) in enumerate(zip(emu, cpu)):
        name = f"{what}[{i}]"
        assert (e.shape, e.dtype, e.stride()) == (c.shape, c.dtype, c.stride()), name
        assert_matches(e, c.to(F64), c.dtype, name, scale=scale)


@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
@pytest.mark.parametrize("layout", ["channels_last", "mixed", "strided", "misaligned"])
def test_emulated_glue_interpolate(emulated_ops, dtype, layout):
    cpu = _cpu_ops()
    real, fake, grad = (_random(LONG, dtype, s) for s in (20, 21, 22))
    if layout == "channels_last":  # read as they are, outputs channels-last
        real, fake, grad = _channels_last(real), _channels_last(fake), _channels_last(grad)
    elif layout == "mixed":  # made contiguous
        fake = _channels_last(fake)
    elif layout == "strided":
        real, grad = _strided(real), _strided(grad)
    else:
        real, fake, grad = _misaligned(real), _misaligned(fake), _misaligned(grad)
    alpha = _strided(torch.rand(LONG[0], generator=torch.Generator().manual_seed(23), dtype=F64).to(dtype))
    _assert_same_outputs(emulated_ops.interpolate(real, fake, alpha), cpu.interpolate(real, fake, alpha), "out")
    scale = 4 * (LONG[1] * LONG[2] * LONG[3]) ** 0.5  # Σ g·(real − fake) over a row cancels
    for needs in ((True, True, True), (False, True, False), (True, False, True)):
        args = (grad, real, fake, alpha, *needs)
        _assert_same_outputs(emulated_ops.interpolate_backward(*args), cpu.interpolate_backward(*args),
                             f"backward {needs}", scale=scale)


@pytest.mark.parametrize("layout", ["channels_last", "strided", "misaligned"])
def test_emulated_glue_grad_norm_penalty(emulated_ops, layout):
    cpu = _cpu_ops()
    g = {"channels_last": _channels_last, "strided": _strided, "misaligned": _misaligned}[layout](_random(ODD, F32, 24))
    fwd_emu = emulated_ops.grad_norm_penalty_forward(g, 1.0, False)
    _assert_same_outputs(fwd_emu, cpu.grad_norm_penalty_forward(g, 1.0, False), "forward")
    _assert_same_outputs(emulated_ops.grad_norm_penalty(g, 0.5, True), cpu.grad_norm_penalty(g, 0.5, True), "loss")
    gout = torch.tensor(0.75)
    _assert_same_outputs(emulated_ops.grad_norm_penalty_backward(gout, g, fwd_emu[1], 1.0, False),
                         cpu.grad_norm_penalty_backward(gout, g, fwd_emu[1], 1.0, False), "backward")


def test_emulated_glue_reconstruction_error(emulated_ops):
    cpu = _cpu_ops()
    x, recon = _strided(_random(LONG, F16, 25)), _channels_last(_random(LONG, F16, 26))
    for p in (1, 2):
        _assert_same_outputs(emulated_ops.reconstruction_error(x, recon, p), cpu.reconstruction_error(x, recon, p),
                             f"p={p}")
        gout = torch.tensor(0.5, dtype=F16).expand(LONG[0])  # stride 0, as from .mean()
        for needs in ((True, True), (True, False), (False, False)):
            args = (gout, x, recon, p, *needs)
            _assert_same_outputs(emulated_ops.reconstruction_error_backward(*args),
                                 cpu.reconstruction_error_backward(*args), f"backward p={p} {needs}")
    with pytest.raises(RuntimeError, match="p must be 1 or 2"):
        emulated_ops.reconstruction_error(x, recon, 3)
    with pytest.raises(RuntimeError, match="recon has shape"):
        emulated_ops.reconstruction_error(x, recon[:1], 2)


def test_emulated_glue_adversarial_loss(emulated_ops):
    cpu = _cpu_ops()
    real = _strided(_random((64, 1, 30, 30), F64, 27))
    fake = _channels_last(_random((4, 3, 6, 5), F64, 28))
    gout = torch.tensor(1.5, dtype=F64)
    for kind in ("bce", "hinge"):
        for r, f in ((real, fake), (real, None), (None, fake)):
            args = (r, f, kind, *ADV_PARAMS)
            _assert_same_outputs(emulated_ops.adversarial_loss(*args), cpu.adversarial_loss(*args), kind, scale=1.0)
            for needs in ((r is not None, f is not None), (False, f is not None)):
                bargs = (gout, *args, *needs)
                _assert_same_outputs(emulated_ops.adversarial_loss_backward(*bargs),
                                     cpu.adversarial_loss_backward(*bargs), f"{kind} backward {needs}")
    with pytest.raises(RuntimeError, match="kind must be one of"):
        emulated_ops.adversarial_loss(real, None, "nope", *ADV_PARAMS)
    with pytest.raises(RuntimeError, match="fake has dtype"):
        emulated_ops.adversarial_loss(real, fake.float(), "bce", *ADV_PARAMS)
