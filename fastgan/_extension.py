"""Loading the compiled extension ``fastgan._C``, once, and the hooks that run when it loads.

:mod:`fastgan.backends` re-exports :func:`extension` and :func:`on_extension_loaded`; its
availability checks read :func:`extension_error` (docs/design.md §3).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["extension", "extension_error", "on_extension_loaded"]

_EXT_LOCK = threading.RLock()
_EXT_STATE: dict[str, Any] = {}
#: Called once, right after the extension loads: each operator module registers the fake
#: (meta) implementations of its compiled ops and its compiled backends here.
_EXTENSION_HOOKS: list[Callable[[], None]] = []


def on_extension_loaded(hook: Callable[[], None]) -> None:
    """Run ``hook`` once the extension is loaded (at once if it already is)."""
    with _EXT_LOCK:
        _EXTENSION_HOOKS.append(hook)
        if _EXT_STATE.get("module") is not None:
            hook()


def extension() -> Any | None:
    """The compiled extension module ``fastgan._C``, or ``None`` when it is not built or fails
    to load (the reason is in :func:`fastgan.backends.backend_status`). Loaded once, on first call."""
    if "module" in _EXT_STATE:  # loaded (or failed) already: no lock on this path
        return _EXT_STATE["module"]
    with _EXT_LOCK:
        if "module" not in _EXT_STATE:
            try:
                module = importlib.import_module("fastgan._C")
                _EXT_STATE["module"], _EXT_STATE["error"] = module, None
                for hook in _EXTENSION_HOOKS:
                    hook()
            except ModuleNotFoundError as exc:
                if exc.name != "fastgan._C":
                    _EXT_STATE["module"], _EXT_STATE["error"] = None, f"failed to load: {exc}"
                else:
                    _EXT_STATE["module"] = None
                    _EXT_STATE["error"] = "the compiled extension fastgan._C is not built"
            except (ImportError, OSError) as exc:
                _EXT_STATE["module"], _EXT_STATE["error"] = None, f"failed to load: {exc}"
        return _EXT_STATE["module"]


def extension_error() -> str | None:
    """Why :func:`extension` returned ``None`` (``None`` when it loaded); call it after
    :func:`extension`."""
    return _EXT_STATE["error"]
