"""Checkpoints of ``fastgan train``: what they hold, reading and checking them
(:func:`read_checkpoint`, :func:`check_checkpoint`) and the :class:`Trainer
<fastgan.train.loop.Trainer>` methods that write and restore them (:class:`CheckpointMixin`)."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

from fastgan.train.config import Config

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_KEYS", "CheckpointError", "CheckpointMixin", "read_checkpoint",
           "check_checkpoint", "checkpoint_path"]

CHECKPOINT_FORMAT = "fastgan.train/1"

#: what a checkpoint holds (:meth:`Trainer.state_dict`), with the type of each entry
CHECKPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "config": dict,
    "rank": int,
    "world_size": int,
    "step": int,
    "elapsed": (int, float),
    "G": dict,
    "D": dict,
    "loss": dict,
    "opt_g": dict,
    "opt_d": dict,
    "sched_g": dict,
    "sched_d": dict,
    "rng": dict,
    "history": dict,
}
#: entries a checkpoint may hold (checkpoints written before them lack them), with their type
OPTIONAL_CHECKPOINT_KEYS: dict[str, type | tuple[type, ...]] = {
    "curve": list,  # the quality curve (Trainer.curve); absent: the run had none yet
}
_RNG_KEYS = ("torch", "data", "noise", "numpy", "python")

class CheckpointError(ValueError):
    """A file that cannot be resumed from: unreadable, not a checkpoint of ``fastgan train``,
    incomplete, or of another configuration. Nothing was loaded, and the file is untouched."""


def rng_state(device: torch.device, data_gen: torch.Generator, noise_gen: torch.Generator) -> dict[str, Any]:
    """A checkpoint's ``rng`` entry: torch's (and on CUDA the device's), numpy's and Python's global
    RNG states and the trainer's data and noise generators (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    rng = {
        "torch": torch.get_rng_state(),
        "data": data_gen.get_state(),
        "noise": noise_gen.get_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [random.getstate()[0], list(random.getstate()[1])],
    }
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def restore_rng(rng: dict[str, Any], device: torch.device, data_gen: torch.Generator,
                noise_gen: torch.Generator) -> None:
    """Set the RNG states :func:`rng_state` saved."""
    torch.set_rng_state(rng["torch"])
    data_gen.set_state(rng["data"])
    noise_gen.set_state(rng["noise"])
    npr = rng["numpy"]
    np.random.set_state(
        ("MT19937", npr["keys"].numpy().astype(np.uint32), npr["pos"], npr["has_gauss"], npr["cached_gaussian"])
    )
    random.setstate((rng["python"][0], tuple(rng["python"][1]), None))
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)


class CheckpointMixin:
    """:class:`~fastgan.train.loop.Trainer`'s checkpoint methods."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a bit-identical resume needs (loadable with ``weights_only=True``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "rank": self.rank,
            "world_size": self.world_size,
            "step": self.step,
            "elapsed": self.elapsed,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "loss": self.loss.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "rng": rng_state(self.device, self.data_gen, self.noise_gen),
            "history": self.history,
            "curve": [dict(p) for p in self.curve],
        }

    def check_compatible(self, state: dict[str, Any]) -> None:
        """Raise :class:`CheckpointError` (a ``ValueError``) unless ``state`` is a complete
        checkpoint of this configuration (fields in ``Config.RESUMABLE_CHANGES`` may differ,
        except ``steps`` under ``lr_decay``): :func:`check_checkpoint`."""
        check_checkpoint(state, self.config, self.rank, self.world_size)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` after :meth:`check_compatible` (nothing changes when
        that check fails)."""
        self.check_compatible(state)
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.loss.load_state_dict(state["loss"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        restore_rng(state["rng"], self.device, self.data_gen, self.noise_gen)
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.history = {k: list(val) for k, val in state["history"].items()}
        self.curve = [dict(p) for p in state.get("curve", [])]
        self._last_eval = None

    def save(self, path: str) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load(self, path: str) -> None:
        """Resume from the checkpoint at ``path`` (:func:`read_checkpoint`:
        ``torch.load(weights_only=True)``; :class:`CheckpointError` for a file that is not one)."""
        self.load_state_dict(read_checkpoint(path, map_location=self.device))


def read_checkpoint(path: str, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint at ``path``, loaded with ``torch.load(weights_only=True)`` (never a
    pickle of arbitrary objects) and checked to hold every entry of :data:`CHECKPOINT_KEYS`.

    :class:`CheckpointError` with one line saying why, for: a missing file or a folder, an empty,
    truncated or garbage file, one that holds Python objects ``weights_only=True`` refuses (the
    class it names), a torch file of something else (e.g. a model's ``state_dict``) and a
    checkpoint with entries missing. The file is only read."""
    import pickle
    import re
    import warnings

    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint {path}")
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warnings about the pickle protocol
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(
                f"{path} holds a Python object ({unsafe.group(1)}) that torch.load(weights_only=True) refuses "
                "to load: not a fastgan train checkpoint (fastgan never loads such a file)"
            ) from None
        raise CheckpointError(f"{path} is not a checkpoint: torch.load(weights_only=True) cannot read it "
                              "(a file of another kind, or corrupted)") from None
    except Exception as exc:  # truncated zip, garbage bytes, I/O errors
        why = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        raise CheckpointError(f"{path} cannot be read as a torch file, it is truncated or corrupted "
                              f"({type(exc).__name__}: {why[:120]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        what = f"a {type(state).__name__}" if not isinstance(state, dict) else (
            f"a dict of {', '.join(map(repr, list(state)[:4]))}{', ...' if len(state) > 4 else ''}"
            if "format" not in state else f"format {state.get('format')!r}")
        raise CheckpointError(f"{path} is not a fastgan train checkpoint ({what}; expected format "
                              f"{CHECKPOINT_FORMAT!r})")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is an incomplete fastgan train checkpoint: {', '.join(missing)} missing")
    wrong = [k for k, kind in CHECKPOINT_KEYS.items() if not isinstance(state[k], kind) or isinstance(state[k], bool)]
    wrong += [k for k, kind in OPTIONAL_CHECKPOINT_KEYS.items() if k in state and not isinstance(state[k], kind)]
    bad_points = "curve" in state and "curve" not in wrong and not all(
        isinstance(p, dict) and isinstance(p.get("step"), int) and not isinstance(p.get("step"), bool)
        and isinstance(p.get("train_seconds"), (int, float)) for p in state["curve"]
    )
    missing_rng = [k for k in _RNG_KEYS if k not in state["rng"]] if "rng" not in wrong else []
    if wrong or missing_rng or bad_points:
        detail = ", ".join([f"{k} is a {type(state[k]).__name__}" for k in wrong] + [f"rng.{k} missing" for k in missing_rng]
                           + (["curve holds points without a step and training seconds"] if bad_points else []))
        raise CheckpointError(f"{path} is a damaged fastgan train checkpoint ({detail})")
    return state


def check_checkpoint(state: dict[str, Any], config: Config, rank: int = 0, world_size: int = 1) -> None:
    """Raise :class:`CheckpointError` unless ``state`` is a complete checkpoint (see
    :func:`read_checkpoint`) of ``config`` for process ``rank`` of ``world_size`` (fields in
    ``Config.RESUMABLE_CHANGES`` may differ, except ``steps`` under ``lr_decay``)."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"not a fastgan train checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"an incomplete fastgan train checkpoint: {', '.join(missing)} missing")
    mine = config.to_dict()
    # a field the checkpoint lacks was added after it was saved: that run had the field's default
    theirs = {**Config(loss=config.loss, data=config.data).to_dict(), **dict(state["config"])}
    free = set(Config.RESUMABLE_CHANGES)
    if config.lr_decay != "none":
        free.discard("steps")
    diff = sorted(k for k in set(mine) | set(theirs) if k not in free and mine.get(k) != theirs.get(k))
    if diff:
        detail = ", ".join(f"{k}: checkpoint {theirs.get(k)!r}, this run {mine.get(k)!r}" for k in diff)
        raise CheckpointError(f"the checkpoint is from another configuration ({detail}); refusing to resume")
    if (state["rank"], state["world_size"]) != (rank, world_size):
        raise CheckpointError(
            f"the checkpoint is of rank {state['rank']} of {state['world_size']} processes; "
            f"this is rank {rank} of {world_size}"
        )
    if state["step"] > config.steps:
        raise CheckpointError(f"the checkpoint is at step {state['step']}, beyond --steps {config.steps}")


def checkpoint_path(out_dir: str, rank: int = 0, world_size: int = 1) -> str:
    """``OUT/checkpoint.pt``, or ``OUT/checkpoint.rank{r}.pt`` for each rank under DDP."""
    name = "checkpoint.pt" if world_size == 1 else f"checkpoint.rank{rank}.pt"
    return os.path.join(out_dir, name)

