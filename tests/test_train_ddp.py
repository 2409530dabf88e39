"""``fastgan train`` under DistributedDataParallel (gloo, CPU, two processes).

One DDP discriminator backward over two processes, each on half of the batch, gives the same
parameter gradients as one process on the whole batch — for WGAN-GP with its gradient penalty
(``autograd.grad`` inside the DDP forward) and for BEGAN, whose k must follow the full-batch
means on every rank. The reference is written with :mod:`fastgan.functional` directly, on the
plain module, with the interpolation coefficients each rank drew.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import torch

import fastgan.functional as FG
from fastgan.train import make_trainer

B = 16
KW = {"width": 16, "depth": 2, "batch_size": B}

WORKER = textwrap.dedent(
    f"""
    import os, sys
    import torch
    import torch.distributed as dist
    from fastgan.train import make_trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, B = dist.get_rank(), {B}
    res = {{}}
    for loss in ("wgan-gp", "began"):
        t = make_trainer(loss, "ring8", distributed=True, **{KW!r})
        g = torch.Generator().manual_seed(7)
        real, fake = 2 * torch.randn(B, 2, generator=g), torch.randn(B, 2, generator=g)
        if loss == "began":
            t.loss.k.fill_(0.3)
        half = slice(rank * B // 2, (rank + 1) * B // 2)
        torch.manual_seed(100 + rank)  # the GP's interpolation coefficients of this rank
        t.discriminator_backward(real[half], fake[half])
        res[loss] = {{"grads": [p.grad.clone() for p in t.D.parameters()],
                     "k": t.loss.k.clone() if loss == "began" else None}}
        t.train_step()  # a full step: both networks stay identical on every rank
        res[loss]["params"] = [p.detach().clone() for p in [*t.G.parameters(), *t.D.parameters()]]
    torch.save(res, os.path.join(sys.argv[1], f"rank{{rank}}.pt"))
    dist.barrier()  # neither rank tears gloo down while the other still talks to it
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reference_grads(loss: str, real: torch.Tensor, fake: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    t = make_trainer(loss, "ring8", **KW)  # same seed: the same initial weights as every rank
    D = t.D
    if loss == "wgan-gp":
        alpha = []
        for r in range(2):
            torch.manual_seed(100 + r)
            alpha.append(torch.rand(B // 2))
        d_loss = FG.wgan_critic_loss(D(real), D(fake)) + FG.gradient_penalty(D, real, fake, gp_weight=t.loss.gp_weight * t.loss.gp_interval, alpha=torch.cat(alpha))  # the first critic step runs the (lazy) penalty
        k_next = None
    else:
        l_real = (real - D(real)[0]).abs().mean(dim=1)
        l_fake = (fake - D(fake)[0]).abs().mean(dim=1)
        d_loss = l_real.mean() - 0.3 * l_fake.mean()
        k_next = (0.3 + 0.001 * (0.5 * l_real.mean() - l_fake.mean())).clamp(0, 1).detach()
    grads = torch.autograd.grad(d_loss, list(D.parameters()))
    return list(grads), k_next


def test_one_ddp_step_equals_one_step_on_the_whole_batch(tmp_path):
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2", OMP_NUM_THREADS="1")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for r in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    g = torch.Generator().manual_seed(7)
    real, fake = 2 * torch.randn(B, 2, generator=g), torch.randn(B, 2, generator=g)
    for loss in ("wgan-gp", "began"):
        ref, k_next = _reference_grads(loss, real, fake)
        for r in range(2):
            got = ranks[r][loss]["grads"]
            assert len(got) == len(ref)
            for a, b in zip(got, ref):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        # the per-rank gradients alone differ from the full-batch ones: the test can fail
        if k_next is not None:
            for r in range(2):
                torch.testing.assert_close(ranks[r][loss]["k"], k_next, rtol=1e-6, atol=1e-7)
        for a, b in zip(ranks[0][loss]["params"], ranks[1][loss]["params"]):
            assert torch.equal(a, b), f"{loss}: the ranks' networks diverged after a full step"


def test_half_batch_gradients_differ_from_the_full_batch():
    """What the DDP test rules out: a shard's gradient is not the full-batch gradient."""
    g = torch.Generator().manual_seed(7)
    real, fake = 2 * torch.randn(B, 2, generator=g), torch.randn(B, 2, generator=g)
    full, _ = _reference_grads("began", real, fake)
    half, _ = _reference_grads("began", real[: B // 2], fake[: B // 2])
    assert any(not torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(full, half))


def test_torchrun_cli_distributed(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "-m", "fastgan.train", "--loss", "wgan-gp", "--data", "ring8",
           "--steps", "3", "--width", "16", "--batch-size", "32", "--eval-samples", "100", "--no-progress", "--no-plots",
           "--distributed", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 3 and report["metrics"]["finite"]
    assert (out / "checkpoint.rank0.pt").is_file() and (out / "checkpoint.rank1.pt").is_file()
