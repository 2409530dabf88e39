"""Backend availability, selection and the dispatch seam of the operators.

fastgan has four backends (docs/design.md §3):

``reference``
    plain PyTorch, every device; the ground truth and the fallback.
``cpu``
    C++ kernels of the compiled extension ``fastgan._C`` for CPU tensors.
``triton``
    Triton kernels for CUDA (and ROCm) tensors; with ``TRITON_INTERPRET=1`` set before fastgan is
    imported, Triton's interpreter runs them on CPU tensors (slowly: for tests and debugging).
    Their ops' schemas and autograd come from ``fastgan._C``, so the backend needs it too.
``cuda``
    CUDA C++ kernels of ``fastgan._C`` for CUDA tensors.

A backend is *available* when what it needs is present on this machine **and** it implements at
least one operator in this version of fastgan. The selection is ``"auto"`` by default: each call
picks, from the device of its tensors, the first available backend of

* CPU tensors: ``cpu`` → ``reference`` (the interpreted ``triton`` backend is never picked
  automatically)
* CUDA tensors: ``cuda`` → ``triton`` → ``reference``

A fixed backend is chosen with :func:`use_backend` (a setter and a context manager) or with the
environment variable ``FASTGAN_BACKEND`` (read once, on first use). A fixed backend runs the
operators it implements and hands the others to ``reference``. Asking for an unknown backend is a
``ValueError``; asking for one that is not available here is a :class:`BackendUnavailableError`
that says why.

Operators register their implementations here with :func:`register`; :func:`resolve` is the one
place that picks an implementation for a call.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.autograd.forward_ad as _fwad
from torch._C._functorch import peek_interpreter_stack as _peek_interpreter_stack

# the compiled extension, loaded once (fastgan/_extension.py); both names stay reachable here
from fastgan._extension import extension, extension_error, on_extension_loaded  # noqa: F401

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "FastganWarning",
    "OP_NAMESPACES",
    "available_backends",
    "backend_status",
    "extension",
    "get_backend",
    "register",
    "requirements",
    "resolve",
    "use_backend",
]

#: Every backend fastgan knows, in no particular order of preference.
BACKENDS: tuple[str, ...] = ("reference", "cpu", "triton", "cuda")

#: The op namespaces of the fused kernels, both declared by ``fastgan._C`` with the same schemas
#: and the same C++ autograd (docs/design.md §3): ``fastgan`` (the ``cpu`` and ``cuda`` backends)
#: and ``fastgan_triton`` (the ``triton`` backend). Their fake implementations are registered for
#: both (``fastgan/ops/<op>.py``).
OP_NAMESPACES: tuple[str, ...] = ("fastgan", "fastgan_triton")

#: Preference order under ``"auto"``, by ``torch.device.type``. Other device types: reference.
_AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu", "reference"),
    "cuda": ("cuda", "triton", "reference"),
}

#: Device types each backend runs on (``None``: every device).
_DEVICES: dict[str, frozenset[str] | None] = {
    "reference": None,
    "cpu": frozenset({"cpu"}),
    "triton": frozenset({"cuda"}),
    "cuda": frozenset({"cuda"}),
}

ENV_VAR = "FASTGAN_BACKEND"


def triton_interpreter() -> bool:
    """Whether ``TRITON_INTERPRET`` asks Triton to interpret kernels (on CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip() not in ("", "0")


if triton_interpreter():
    _DEVICES["triton"] = frozenset({"cuda", "cpu"})


class BackendUnavailableError(RuntimeError):
    """A known backend was asked for, but it cannot run on this machine."""


class FastganWarning(UserWarning):
    """Warnings fastgan emits (for example: running on the reference path)."""


# --------------------------------------------------------------------------------------------
# registry of implementations: backend -> op -> callable
_IMPLS: dict[str, dict[str, Callable[..., Any]]] = {name: {} for name in BACKENDS}


#: resolve() results by (op, device type, selection); cleared whenever any of them can change
_RESOLVED: dict[tuple[str, str, str], tuple[str, Callable[..., Any]]] = {}


def register(op: str, backend: str, fn: Callable[..., Any]) -> None:
    """Register ``fn`` as ``backend``'s implementation of operator ``op``."""
    if backend not in _IMPLS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    _IMPLS[backend][op] = fn
    _RESOLVED.clear()


def register_compiled(op: str, fn: Callable[..., Any]) -> None:
    """Register a ``torch.ops.fastgan`` op: the dispatcher runs its CPU kernel for the ``cpu``
    backend and its CUDA kernel for the ``cuda`` backend."""
    register(op, "cpu", fn)
    register(op, "cuda", fn)


def requirements(name: str) -> tuple[bool, str]:
    """Whether what backend ``name`` needs is present on this machine, whether or not its
    operators are registered yet (:func:`backend_status` requires both); the reason when it is
    not. ``fastgan`` imports the Triton kernels only where this holds for ``triton``."""
    return _probe(name)


def _probe(name: str) -> tuple[bool, str]:
    """Whether what backend ``name`` needs is present; the reason when it is not."""
    if name == "reference":
        return True, "plain PyTorch"
    if name == "cpu":
        if extension() is None:
            return False, extension_error()
        return True, "compiled CPU kernels"
    if name == "cuda":
        ext = extension()
        if ext is None:
            return False, extension_error()
        if not getattr(ext, "WITH_CUDA", False):
            return False, "fastgan._C was built without CUDA kernels"
        if not torch.cuda.is_available():
            return False, "no CUDA device is available"
        return True, "compiled CUDA kernels"
    if name == "triton":
        if importlib.util.find_spec("triton") is None:
            return False, "triton is not installed"
        if extension() is None:
            return False, f"needs fastgan._C, which declares its ops and their autograd ({extension_error()})"
        if triton_interpreter():
            return True, "Triton kernels in Triton's interpreter (TRITON_INTERPRET=1), on CPU and CUDA tensors"
        if not torch.cuda.is_available():
            return False, "no CUDA (or ROCm) device is available"
        return True, "Triton kernels (with fastgan._C's ops and autograd)"
    raise ValueError(f"unknown backend {name!r}")


def backend_status() -> dict[str, tuple[bool, str]]:
    """``{backend: (available, reason)}`` for every known backend."""
    status = {}
    for name in BACKENDS:
        ok, why = _probe(name)
        if ok and not _IMPLS[name]:
            ok, why = False, "no operator of this fastgan version is implemented on this backend"
        status[name] = (ok, why)
    return status


def _is_available(name: str) -> bool:
    return bool(_IMPLS[name]) and _probe(name)[0]


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, ``"reference"`` always among them."""
    return [name for name in BACKENDS if _is_available(name)]


def _check_name(name: object, source: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{source} must be a backend name (str), got {type(name).__name__}")
    if name != "auto" and name not in BACKENDS:
        raise ValueError(
            f"{source}: unknown backend {name!r}; expected 'auto' or one of {', '.join(BACKENDS)}"
        )
    if name != "auto" and not _is_available(name):
        ok, why = backend_status()[name]
        raise BackendUnavailableError(
            f"{source}: backend {name!r} is not available on this machine ({why}); "
            f"available: {', '.join(available_backends())}"
        )
    return name


# --------------------------------------------------------------------------------------------
# selection: per thread. Each thread starts from FASTGAN_BACKEND (or "auto"); a setter call of
# use_backend changes the calling thread's selection; a `with use_backend(...)` block holds its
# selection for the calling thread until it exits, whatever the order in which blocks exit.
class _Selection(threading.local):
    def __init__(self) -> None:
        # [owner, name] of the setter calls, latest last (the latest one counts; an entry leaves
        # when its owner is entered as a block); none: the environment variable's value or "auto"
        self.setters: list[list[Any]] = []
        self.stack: list[list[Any]] = []  # [owner, name] of the active `with` blocks, innermost last


#: setter entries kept per thread: only the latest counts, the earlier ones are there so that an
#: object constructed and then entered as a block can take back its own setter call
_SETTERS_KEPT = 32
_LOCAL = _Selection()
_ENV: dict[str, str] = {}  # the validated FASTGAN_BACKEND, once read


def _from_environment() -> str:
    if "name" not in _ENV:
        env = os.environ.get(ENV_VAR, "").strip()
        # Not cached when invalid: every call raises the same clear error until it is fixed or
        # overridden with use_backend(...).
        name = _check_name(env, f"environment variable {ENV_VAR}") if env else "auto"
        _ENV["name"] = name
    return _ENV["name"]


def get_backend() -> str:
    """The calling thread's selection: ``"auto"`` or a backend name.

    Raises ``ValueError`` (unknown name) or :class:`BackendUnavailableError` when the selection
    comes from a bad ``FASTGAN_BACKEND`` that no :func:`use_backend` overrides."""
    if _LOCAL.stack:
        return _LOCAL.stack[-1][1]
    if _LOCAL.setters:
        return _LOCAL.setters[-1][1]
    return _from_environment()


class use_backend:
    """Select the backend of every fastgan operator, for the calling thread.

    Used as a setter, ``fastgan.use_backend("reference")`` switches the calling thread from now
    on; used as a context manager, the selection holds inside the block and the previous one
    comes back on exit::

        with fastgan.use_backend("reference"):
            loss = fastgan.functional.grad_norm_penalty(grads)

    ``name`` is ``"auto"`` (per call, from the tensors' device) or one of :data:`BACKENDS`. The
    selection is thread-local: other threads keep theirs (each thread starts from the
    ``FASTGAN_BACKEND`` environment variable, or ``"auto"``). Blocks may be nested, exit in any
    order, and the same object may be entered again.
    """

    def __init__(self, name: str) -> None:
        self.name = _check_name(name, "use_backend")
        self._undo: Callable[[], None] | None = _set_selection(self, self.name)

    def __enter__(self) -> "use_backend":
        if self._undo is not None:  # the block, not the setter, holds the selection
            self._undo()
            self._undo = None
        _LOCAL.stack.append([self, self.name])
        return self

    def __exit__(self, *exc: object) -> None:
        stack = _LOCAL.stack
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] is self:
                del stack[i]
                return

    def __repr__(self) -> str:
        return f"use_backend({self.name!r})"


def _set_selection(owner: object, name: str) -> Callable[[], None]:
    """Make ``name`` the calling thread's selection (the innermost block's, inside one); returns
    what takes that back."""
    if _LOCAL.stack:
        entry, previous = _LOCAL.stack[-1], _LOCAL.stack[-1][1]
        entry[1] = name

        def undo() -> None:
            if entry[1] == name:
                entry[1] = previous

        return undo
    setters = _LOCAL.setters
    setters.append([owner, name])
    del setters[:-_SETTERS_KEPT]

    def undo_setter() -> None:
        setters[:] = [e for e in setters if e[0] is not owner]

    return undo_setter


_WARNED: set[str] = set()


def _warn_fallback(device_type: str, skipped: list[str]) -> None:
    if device_type in _WARNED:
        return
    _WARNED.add(device_type)
    status = backend_status()
    reasons = "; ".join(f"{n}: {status[n][1]}" for n in skipped)
    warnings.warn(
        f"fastgan runs {device_type} tensors on the reference (plain PyTorch) path ({reasons}). "
        "Results are exact, only slower; `fastgan info` shows what is built.",
        FastganWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside fastgan."""
    import sys

    package_dir = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package_dir):
        frame, level = frame.f_back, level + 1
    return level


def resolve(op: str, device: torch.device) -> tuple[str, Callable[..., Any]]:
    """Pick the implementation of operator ``op`` for tensors on ``device``.

    Returns ``(backend_name, callable)``. The choice is cached per (op, device type, selection).

    Under a ``torch.func`` transform (grad, vjp, jacrev, hessian, vmap, jvp) or forward-mode AD
    (``torch.autograd.forward_ad``) every backend runs the operator as the reference's
    composite math, which PyTorch transforms like any of its own functions: the fused kernels are
    reverse-mode autograd ops. Outside them, higher-order gradients of the fused kernels are
    differentiable too (see :mod:`fastgan.ops._autograd`).
    """
    selected = get_backend()
    if _transformed():
        return "reference", _IMPLS["reference"][op]
    key = (op, device.type, selected)
    hit = _RESOLVED.get(key)
    if hit is not None:
        return hit
    hit = _resolve(op, device)
    _RESOLVED[key] = hit
    return hit


def functorch_active() -> bool:
    """Whether a ``torch.func`` transform (grad, vjp, jacrev, hessian, vmap, jvp) is active."""
    return _peek_interpreter_stack() is not None


def _transformed() -> bool:
    """Whether a ``torch.func`` transform or a forward-mode AD level is active, from PyTorch's
    own state. While ``torch.compile`` traces, the fused ops (with their fake implementations)
    go into the graph: dynamo reports an interpreter of its own there."""
    if _fwad._current_level < 0 and not functorch_active():
        return False
    return not torch.compiler.is_compiling()


def _resolve(op: str, device: torch.device) -> tuple[str, Callable[..., Any]]:
    selected = get_backend()
    if selected == "auto":
        order = _AUTO_ORDER.get(device.type, ("reference",))
        skipped = []
        for name in order:
            if op in _IMPLS[name] and _probe(name)[0]:
                if name == "reference" and skipped:
                    _warn_fallback(device.type, skipped)
                return name, _IMPLS[name][op]
            if name != "reference":
                skipped.append(name)
        raise RuntimeError(f"no implementation of fastgan operator {op!r}")  # pragma: no cover
    devices = _DEVICES[selected]
    if devices is not None and device.type not in devices:
        raise ValueError(
            f"backend {selected!r} runs on {'/'.join(sorted(devices))} tensors, but the inputs of "
            f"{op} are on {device}; select 'auto' or a backend for {device.type}"
        )
    if op in _IMPLS[selected]:
        return selected, _IMPLS[selected][op]
    return "reference", _IMPLS["reference"][op]
