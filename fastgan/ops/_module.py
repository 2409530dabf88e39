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

The module in ``sys.modules`` is replaced by an instance of a small class (:class:`OperatorModule`,
one subclass per operator) whose instance ``__dict__`` *is* the module's namespace: attribute
reads, writes and deletions, ``vars()``, ``dir()``, ``from fastgan.ops.interpolate import
reference`` and ``monkeypatch`` see the module itself, and the class adds ``__call__``. (A
``types.ModuleType`` subclass would do the same eagerly, but ``torch.compile`` cannot trace a call
of a module object.)
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

import torch

from fastgan import _deprecation as deprecation


class OperatorModule:
    """An operator's module namespace that is also callable, as deprecated (see the module
    docstring); :func:`make_callable` makes one subclass and one instance per operator."""

    _fastgan_module: types.ModuleType
    _fastgan_function: Callable[..., Any]
    _fastgan_renames: dict[str, str]

    def __repr__(self) -> str:
        return repr(self._fastgan_module)

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        function = self._fastgan_function
        deprecation.warn(
            f"calling {self.__name__}(...) is deprecated and will stop working in the next release: "
            f"{self.__name__} is the operator's module; call fastgan.functional.{function.__name__}(...) "
            "instead"
        )
        renames = self._fastgan_renames
        if renames:
            kwargs = {renames.get(k, k): val for k, val in kwargs.items()}
        return function(*args, **kwargs)


def make_callable(name: str, function: Callable[..., Any], renames: Mapping[str, str] | None = None) -> None:
    """Make the module ``name`` (being imported) callable as the deprecated form of ``function``;
    ``renames`` maps 0.1 keyword names to the function's."""
    module = sys.modules[name]
    cls = type(
        "OperatorModule",
        (OperatorModule,),
        {
            "_fastgan_module": module,
            "_fastgan_function": staticmethod(function),
            "_fastgan_renames": dict(renames or {}),
            "__module__": __name__,
        },
    )
    proxy = object.__new__(cls)
    object.__setattr__(proxy, "__dict__", module.__dict__)  # the module's own namespace
    sys.modules[name] = proxy  # type: ignore[assignment]
