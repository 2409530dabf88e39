"""The ``fastgan`` command line: ``fastgan info``, ``bench``, ``train`` and ``check``."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_info() -> dict[str, Any]:
    """What ``fastgan info`` reports, as a dict (no compilation, no GPU work)."""
    import torch

    import fastgan
    from fastgan import backends

    cuda_devices = []
    if torch.cuda.is_available():
        cuda_devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    ext = backends.extension()
    build = None
    if ext is not None and hasattr(ext, "build_info"):
        build = ext.build_info()
    return {
        "fastgan": fastgan.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _version("triton"),
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cuda_devices": cuda_devices,
        "selection": backends.get_backend(),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastgan", description="fused GAN loss kernels for PyTorch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="versions, devices and the backends built and available")
    p_info.add_argument("--json", action="store_true", help="print the report as JSON")
    modules = {}
    for name, (_, help_text) in SUBCOMMANDS.items():
        mod = _subcommand_module(name)
        if mod is None:
            continue
        modules[name] = mod
        mod.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "info":
        info = collect_info()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            _print_info(info)
        return 0
    return int(modules[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
