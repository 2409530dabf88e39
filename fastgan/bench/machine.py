"""What a benchmark ran on: the CPU model, whether it is a VM, the last-level cache, a short
file-name-friendly machine name and the full description written into the results
(:func:`machine_info`)."""

from __future__ import annotations

import os
import platform
import re
from typing import Any

import torch

MiB = 1 << 20


def _cache_size_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.I)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def last_level_cache_bytes() -> int:
    """Size of the largest (last-level) data cache seen by CPU 0, from sysfs; 32 MiB if unknown."""
    best_level, best = -1, None
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            if not entry.startswith("index"):
                continue
            with open(os.path.join(base, entry, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(base, entry, "size")) as f:
                size = _cache_size_bytes(f.read())
            if kind != "Instruction" and size and level > best_level:
                best_level, best = level, size
    except (OSError, ValueError):
        pass
    return best or 32 * MiB


LLC_BYTES = last_level_cache_bytes()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else what :mod:`platform` says). ``fastgan info``
    reports it too."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_is_virtual() -> bool:
    """Whether the CPU flags say this runs under a hypervisor (a VM)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return "hypervisor" in line.split()
    except OSError:
        pass
    return False


def _slug(text: str) -> str:
    text = re.sub(r"\((R|TM|tm|r)\)", " ", text)
    text = re.sub(r"@.*$", "", text)
    text = re.sub(r"\b(CPU|Processor|\d+-Core|NVIDIA|GPU)\b", " ", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def short_machine_name(device: str = "cpu") -> str:
    """A file-name-friendly name of what is measured: the CPU model and core count
    (``amd-epyc-2c``), or the GPU model (``h200``)."""
    if device == "cuda" and torch.cuda.is_available():
        return _slug(torch.cuda.get_device_name()) or "cuda"
    return f"{_slug(cpu_model()) or platform.machine()}-{os.cpu_count()}c"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What was measured on: CPU, cores, threads, caches, memory, GPU, torch, fastgan."""
    info: dict[str, Any] = {
        "device": device,
        "cpu_model": cpu_model(),
        "virtual_machine": cpu_is_virtual(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "last_level_cache_MiB": LLC_BYTES / MiB,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    alloc = {k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "GLIBC_TUNABLES") or k.startswith("MALLOC_")}
    info["allocator"] = alloc or f"default ({platform.libc_ver()[0] or 'libc'} {platform.libc_ver()[1]})".strip()
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            info["transparent_hugepage"] = f.read().strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_GiB"] = round(int(f.readline().split()[1]) / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        pass
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(
            gpu=props.name,
            gpu_memory_GiB=round(props.total_memory / (1 << 30), 1),
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_multiprocessors=props.multi_processor_count,
            gpu_l2_cache_MiB=getattr(props, "L2_cache_size", 0) / MiB or None,
            torch_cuda=torch.version.cuda,
        )
    try:
        import importlib.metadata

        info["triton"] = importlib.metadata.version("triton")
    except Exception:
        info["triton"] = None
    try:
        import fastgan

        info["fastgan"] = fastgan.__version__
        info["fastgan_backends"] = fastgan.available_backends()
    except Exception as exc:  # pragma: no cover - the benchmark still describes the machine
        info["fastgan"] = f"not importable: {exc}"
    return info
