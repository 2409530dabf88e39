"""The ``fastgan`` command line: ``fastgan info``, ``bench``, ``train`` and ``check``.

Usage errors — a bad flag, an impossible combination of flags, a bad ``FASTGAN_BACKEND``, an
output folder that cannot be written, a checkpoint that cannot be resumed — end the command with
exit status 2 and ONE line on stderr that says what is wrong and what is accepted, never a
traceback. The sub-commands raise :class:`UsageError` for them; :func:`main` turns it into that
line and status 2 in one place, and :class:`ArgumentParser` does the same for what argparse
itself rejects. The checks shared by the sub-commands live here too (the argument types,
:func:`backend_selection`, :func:`check_backend`, :func:`writable_dir`, :func:`optional`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import math
import os
import platform
import sys
from typing import Any


#: what to install for the optional packages of ``fastgan train`` and ``fastgan bench``
TRAIN_EXTRA = 'pip install "fastgan[train]"'


class UsageError(Exception):
    """A bad flag, combination of flags or environment: the command exits with status 2 and
    this message as one line on stderr (``fastgan SUBCOMMAND: MESSAGE``)."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a rejected argument is one line on stderr (no usage block) and
    exit status 2: ``fastgan train: argument --data: invalid choice: ... (see fastgan train --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {one_line(message)} (see {self.prog} --help)\n")


# ------------------------------------------------------------------ argument types (argparse)
def _number(text: str, kind: type, what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = _number(text, int, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _number(text, float, "a finite number > 0")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _number(text, float, "a finite number >= 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    return _number(text, float, "a finite number")


# ----------------------------------------------------------------------------- shared checks
def _backend_names() -> str:
    from fastgan import backends

    return "auto or one of " + ", ".join(backends.BACKENDS)


def backend_selection() -> str:
    """The backend selection (:func:`fastgan.get_backend`); a :class:`UsageError` when the
    environment variable ``FASTGAN_BACKEND`` names no backend or one not available here."""
    from fastgan import backends

    env_var = getattr(backends, "ENV_VAR", "FASTGAN_BACKEND")
    value = os.environ.get(env_var, "")
    try:
        return backends.get_backend()
    except backends.BackendUnavailableError as exc:
        name = value.strip()
        why = backends.backend_status()[name][1] if name in backends.BACKENDS else one_line(exc)
        raise UsageError(
            f"{env_var}={value!r}: backend {name!r} is not available on this machine ({why}); "
            f"available: auto, {', '.join(backends.available_backends())} (change or unset {env_var})"
        ) from None
    except (ValueError, TypeError):
        raise UsageError(f"{env_var}={value!r} is not a backend; expected {_backend_names()} "
                         f"(change or unset {env_var})") from None


def check_backend(name: str, flag: str = "--backend", device: str = "cpu") -> str:
    """``name`` if it is ``"auto"`` or a backend available here that runs on ``device``
    tensors; a :class:`UsageError` that names ``flag`` otherwise."""
    import torch

    from fastgan import backends

    if name != "auto" and name not in backends.BACKENDS:
        raise UsageError(f"{flag}: unknown backend {name!r}; expected {_backend_names()}")
    status = backends.backend_status()
    available = backends.available_backends()
    if name != "auto" and not status[name][0]:
        raise UsageError(f"{flag}: backend {name!r} is not available on this machine ({status[name][1]}); "
                         f"available: auto, {', '.join(available)}")

    def runs_on(backend: str) -> bool:
        if backend == "auto":
            return True
        try:
            with backends.use_backend(backend):
                backends.resolve("interpolate", torch.device(device))
        except (ValueError, backends.BackendUnavailableError):
            return False
        return True

    if not runs_on(name):
        usable = [b for b in available if runs_on(b)]
        raise UsageError(f"{flag}: backend {name!r} does not run on {device} tensors, and this command runs on "
                         f"{device}; use auto or one of {', '.join(usable)}")
    return name


def writable_dir(path: str, flag: str = "--out") -> str:
    """Create the folder ``path`` if needed and make sure a file can be written in it; a
    :class:`UsageError` that names ``flag`` otherwise (an existing file, a path under a file, a
    folder that cannot be written). Returns ``path``."""
    import tempfile

    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a file, not a folder; give a folder (it is created if needed)")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fastgan-write-test-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        why = exc.strerror or one_line(exc)
        parent = os.path.dirname(os.path.abspath(path))
        while parent and not os.path.exists(parent) and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
        if os.path.exists(parent) and not os.path.isdir(parent):
            why = f"{parent} is a file"
        raise UsageError(f"{flag} {path}: cannot write there ({why}); "
                         "give a folder you can write in (it is created if needed)") from None
    return path


def optional(module: str) -> Any | None:
    """The optional package ``module``, or None where it is not installed (or cannot be
    imported)."""
    import importlib

    try:
        return importlib.import_module(module)
    except Exception:  # not installed (ImportError), or installed but broken
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_info() -> dict[str, Any]:
    """What ``fastgan info`` reports, as a dict (no compilation, no GPU work)."""
    import torch

    import fastgan
    from fastgan import backends
    from fastgan.bench.machine import cpu_model

    cuda_devices = []
    if torch.cuda.is_available():
        cuda_devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    ext = backends.extension()
    build = None
    if ext is not None and hasattr(ext, "build_info"):
        build = ext.build_info()
    try:
        selection, selection_error = backend_selection(), None
    except UsageError as exc:  # a bad FASTGAN_BACKEND: reported, not raised
        selection, selection_error = None, str(exc)
    return {
        "fastgan": fastgan.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _version("triton"),
        "cpu": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cuda_devices": cuda_devices,
        "selection": selection,
        "selection_error": selection_error,
        "backends": {
            name: {"available": ok, "detail": why} for name, (ok, why) in backends.backend_status().items()
        },
        "extension": build,
    }


def _print_info(info: dict[str, Any]) -> None:
    print(f"fastgan   {info['fastgan']}")
    print(f"python    {info['python']}")
    print(f"torch     {info['torch']} (CUDA {info['torch_cuda'] or 'not in this build'})")
    print(f"triton    {info['triton'] or 'not installed'}")
    print(f"processor {info['cpu']}, torch uses {info['cpu_threads']} threads")
    print(f"gpu       {', '.join(info['cuda_devices']) or 'none'}")
    env = os.environ.get("FASTGAN_BACKEND")
    if info.get("selection_error"):
        print(f"selection none: {info['selection_error']}")
    else:
        print(f"selection {info['selection']}" + (f" (FASTGAN_BACKEND={env})" if env else ""))
    print("backends:")
    for name, st in info["backends"].items():
        state = "available" if st["available"] else "not available"
        print(f"  {name:<10} {state:<14} {st['detail']}")
    if info["extension"]:
        print("extension:")
        for key, val in info["extension"].items():
            print(f"  {key}: {val}")


# Sub-commands other than ``info`` live in their own modules, each with
# ``add_arguments(parser)`` and ``run(args) -> int`` (exit status). They are imported only to
# build the parser, so they must keep heavy imports (matplotlib, triton, ...) inside ``run``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("fastgan.bench", "check every backend against the reference, then time it"),
    "train": ("fastgan.train", "train a GAN of any family on toy data or 8x8 digits"),
    "check": ("fastgan.check", "the correctness matrix on this machine (exit 1 on any failure)"),
}


def _subcommand_module(name: str):
    import importlib

    module_name, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return None  # not part of this version of fastgan
        raise


def run_subcommand(prog: str, run: Any, args: argparse.Namespace) -> int:
    """``run(args)`` (a sub-command's hook); its exit status, or 2 with one line on stderr for
    a :class:`UsageError` — the one place usage errors become an exit status — and 130 with
    one line for a Ctrl-C the sub-command did not handle itself; 141, quietly, when standard
    output is a pipe whose reader has gone (``fastgan info | head``)."""
    try:
        status = int(run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return status
    except BrokenPipeError:
        # the reader went away (``fastgan info | head``): stop quietly, with the status a
        # command killed by SIGPIPE has, and send what Python still flushes at exit nowhere
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        return 141
    except UsageError as exc:
        sys.stdout.flush()
        print(f"{prog}: {one_line(exc)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        sys.stdout.flush()
        print(f"\n{prog}: interrupted", file=sys.stderr, flush=True)
        return 130


def _info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_info(info)
    if info["selection_error"]:
        # the whole report is printed; the status says that the same environment makes the
        # other commands refuse to run
        raise UsageError(info["selection_error"])
    return 0


def main(argv: list[str] | None = None) -> int:
    """``fastgan ...``; returns the exit status (argparse's own rejections raise
    ``SystemExit(2)``, as argparse does; every other usage error returns 2)."""
    parser = ArgumentParser(prog="fastgan", description="fused GAN loss kernels for PyTorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, devices and the backends built and available")
    p_info.add_argument("--json", action="store_true", help="print the report as JSON")
    modules = {}
    parsers = {"info": p_info}
    for name, (_, help_text) in SUBCOMMANDS.items():
        mod = _subcommand_module(name)
        if mod is None:
            continue
        modules[name] = mod
        parsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(parsers[name])
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the sub-command's parser: "fastgan train: unrecognized arguments: ..."
        (parsers.get(args.command) or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "info":
        return run_subcommand("fastgan info", _info, args)
    return run_subcommand(f"fastgan {args.command}", modules[args.command].run, args)


if __name__ == "__main__":
    sys.exit(main())
