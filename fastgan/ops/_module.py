"""``fastgan.ops.<op>`` is its operator's module; calling it is the deprecated form of
``fastgan.functional.<op>(...)``.

Up to fastgan 0.1, ``fastgan/ops/__init__.py`` re-exported each operator's function under its
module's name, so ``fastgan.ops.grad_norm_penalty`` was a function and the module (its reference,
checks, dispatch, fake implementations and constants such as ``NORM_DTYPE``) could only be reached
with ``importlib``. Now the name is the module, and each function has one public name, in
:mod:`fastgan.functional`. So that code written for 0.1 keeps working for one release, an
operator's module stays callable: ``fastgan.ops.interpolate(real, fake, alpha)`` warns
(``DeprecationWarning``) and calls ``fastgan.functional.interpolate`` — eagerly and under
``torch.compile`` alike (the warning is left out while compiling).

The module object in ``sys.modules`` is replaced by a thin :class:`OperatorModule` that forwards
every attribute read, write and deletion to the module itself (``from fastgan.ops.interpolate
import reference``, ``monkeypatch.setattr`` and ``dir`` behave as for the module) and adds
``__call__``: a ``types.ModuleType`` subclass would do the same eagerly, but ``torch.compile``
cannot trace a call of a module object.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch


class OperatorModule:
    """An operator's module (attribute access goes to it) that is also callable, as deprecated."""

    def __init__(self, module: types.ModuleType, function: Callable[..., Any], renames: Mapping[str, str]):
        object.__setattr__(self, "_fastgan_module", module)
        object.__setattr__(self, "_fastgan_function", function)
        object.__setattr__(self, "_fastgan_renames", dict(renames))

    def __getattr__(self, name: str) -> Any:
        # only for names the proxy itself lacks: everything but its three attributes
        return getattr(self.__dict__["_fastgan_module"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._fastgan_module, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._fastgan_module, name)

    def __dir__(self) -> list[str]:
        return dir(self._fastgan_module)

    def __repr__(self) -> str:
        return repr(self._fastgan_module)

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        function = self._fastgan_function
        if not torch.compiler.is_compiling():
            warnings.warn(
                f"calling {self._fastgan_module.__name__}(...) is deprecated and will stop working in the "
                f"next release: {self._fastgan_module.__name__} is the operator's module; call "
                f"fastgan.functional.{function.__name__}(...) instead",
                DeprecationWarning,
                stacklevel=2,
            )
        renames = self._fastgan_renames
        if renames:
            kwargs = {renames.get(k, k): val for k, val in kwargs.items()}
        return function(*args, **kwargs)


def make_callable(name: str, function: Callable[..., Any], renames: Mapping[str, str] | None = None) -> None:
    """Make the module ``name`` (being imported) callable as the deprecated form of ``function``;
    ``renames`` maps 0.1 keyword names to the function's."""
    sys.modules[name] = OperatorModule(sys.modules[name], function, renames or {})  # type: ignore[assignment]
