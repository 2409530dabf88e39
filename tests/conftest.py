"""Test-session setup shared by every test module.

Without a GPU, the ``triton`` backend is tested in Triton's interpreter on CPU tensors: the
interpreter has to be switched on before fastgan (and its Triton kernels) are imported, so it is
done here, first. On a machine with a GPU nothing is changed and the same tests run the Triton
kernels on the GPU for real.
"""

from __future__ import annotations

import importlib.util
import os

if "TRITON_INTERPRET" not in os.environ and importlib.util.find_spec("triton") is not None:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
