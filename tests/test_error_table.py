"""``docs/errors.md`` and the library agree: every row of the error table is triggered, for every
function the row names, with the row's exception type (exactly) and message excerpt, and the
message names one of the row's arguments. A row without calls here, or calls for a row or a
function that is not in the table, fail the test — the table cannot drift from the code."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import fastgan
import fastgan.functional as FG
from fastgan import amp, backends, losses

TABLE = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
B = 4


def _x(*shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, dtype=dtype, device=device)


def parse_table() -> list[dict]:
    """The rows of the table in ``## The table``: id, functions (backticked names; ``same
    functions`` repeats the previous row's), argument names (backticked), exception, excerpt."""
    text = TABLE.read_text(encoding="utf-8")
    section = text.split("## The table", 1)[1].split("\n## ", 1)[0]
    rows, previous = [], []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| id ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 6, f"malformed row: {line}"
        rid, fcell, acell, _, ecell, mcell = cells
        functions = previous if fcell.startswith("same functions") else re.findall(r"`([^`]+)`", fcell)
        if not functions:
            functions = ["*"]
        previous = functions
        rows.append({
            "id": rid,
            "functions": functions,
            "arguments": re.findall(r"`([^`]+)`", acell),
            "exception": ecell.strip("`"),
            "excerpt": mcell.strip("`"),
        })
    return rows


ROWS = parse_table()
EXCEPTIONS = {"TypeError": TypeError, "ValueError": ValueError, "RuntimeError": RuntimeError,
              "BackendUnavailableError": fastgan.BackendUnavailableError}


# ------------------------------------------------------------------------------- the calls
S = _x(B, 1)
E = torch.rand(B) + 0.1
X = _x(B, 3, 5, 5)
A = torch.rand(B)
INT = torch.ones(B, 1, dtype=torch.int64)
META_S = torch.empty(B, 1, device="meta")
META_E = torch.empty(B, device="meta")
LIN = nn.Linear(2, 2)


def critic(x, **kw):
    return (x.reshape(x.shape[0], -1) ** 2).sum(1)


def scaler():
    return torch.amp.GradScaler("cpu")


#: score functions: name -> (call(real, fake)); the one-input generator losses take ``fake``
SCORE2 = {
    "gan_discriminator_loss": FG.gan_discriminator_loss,
    "wgan_critic_loss": FG.wgan_critic_loss,
    "lsgan_discriminator_loss": FG.lsgan_discriminator_loss,
    "hinge_discriminator_loss": FG.hinge_discriminator_loss,
    "adversarial_loss": lambda r, f: FG.adversarial_loss(r, f, "bce"),
}
SCORE1 = {
    "gan_generator_loss": FG.gan_generator_loss,
    "wgan_generator_loss": FG.wgan_generator_loss,
    "lsgan_generator_loss": FG.lsgan_generator_loss,
    "hinge_generator_loss": FG.hinge_generator_loss,
}


def _scores(bad, both=False):
    calls = {n: (lambda f=f: f(bad, bad if both else S)) for n, f in SCORE2.items()}
    calls.update({n: (lambda f=f: f(bad)) for n, f in SCORE1.items()})
    return calls


def _rows(make):
    """``make(long_or_empty)`` applied to the first tensor of every per-sample-row function."""
    return {
        "interpolate": lambda: FG.interpolate(make(X), make(X), A if make(X).shape[0] == B else torch.empty(0)),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(make(X)),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, make(X), make(X)),
        "r1_penalty": lambda: FG.r1_penalty(critic, make(X)),
        "reconstruction_error": lambda: FG.reconstruction_error(make(X), make(X), 1),
        "pulling_away_term": lambda: FG.pulling_away_term(make(_x(B, 8))),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(make(X)),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, make(X), make(X), scaler()),
    }


def _per_sample(bad_first=None, bad_second=None):
    r, f = (bad_first if bad_first is not None else E), (bad_second if bad_second is not None else E)
    return {
        "ebgan_discriminator_loss": lambda: FG.ebgan_discriminator_loss(r, f, 1.0),
        "ebgan_generator_loss": lambda: FG.ebgan_generator_loss(r),
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(r, f, 0.5),
        "began_generator_loss": lambda: FG.began_generator_loss(r),
        "began_update": lambda: FG.began_update(0.0, r, f),
    }


def _every_tensor_function(corrupt):
    """One call per function that takes tensors, its first tensor argument passed through
    ``corrupt`` (the other arguments valid)."""
    xs, xe, xx, xa, emb = corrupt(S), corrupt(E), corrupt(X), corrupt(A), corrupt(_x(B, 8))
    return {
        "gan_discriminator_loss": lambda: FG.gan_discriminator_loss(xs, S),
        "gan_generator_loss": lambda: FG.gan_generator_loss(xs),
        "wgan_critic_loss": lambda: FG.wgan_critic_loss(S, xs),
        "wgan_generator_loss": lambda: FG.wgan_generator_loss(xs),
        "lsgan_discriminator_loss": lambda: FG.lsgan_discriminator_loss(xs, S),
        "lsgan_generator_loss": lambda: FG.lsgan_generator_loss(xs),
        "hinge_discriminator_loss": lambda: FG.hinge_discriminator_loss(S, xs),
        "hinge_generator_loss": lambda: FG.hinge_generator_loss(xs),
        "interpolate": lambda: FG.interpolate(X, X, xa),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(xx),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, xx),
        "r1_penalty": lambda: FG.r1_penalty(critic, xx),
        "reconstruction_error": lambda: FG.reconstruction_error(X, xx, 1),
        "ebgan_discriminator_loss": lambda: FG.ebgan_discriminator_loss(xe, E, 1.0),
        "ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, emb),
        "pulling_away_term": lambda: FG.pulling_away_term(emb),
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(E, xe, 0.5),
        "began_generator_loss": lambda: FG.began_generator_loss(xe),
        "began_update": lambda: FG.began_update(0.5, xe, E),
        "clip_weights_": lambda: FG.clip_weights_([emb]),
        "adversarial_loss": lambda: FG.adversarial_loss(xs, S, "bce"),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(xx),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, scaler(), alpha=xa),
    }


def _every_number(value, *, infinite=False):
    """One call per function with numeric hyper-parameters, one of them ``value``."""
    calls = {
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(X, center=value),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, gp_weight=value),
        "r1_penalty": lambda: FG.r1_penalty(critic, X, gamma=value),
        "lsgan_discriminator_loss": lambda: FG.lsgan_discriminator_loss(S, S, a=value),
        "lsgan_generator_loss": lambda: FG.lsgan_generator_loss(S, c=value),
        "ebgan_discriminator_loss": lambda: FG.ebgan_discriminator_loss(E, E, margin=value),
        "ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, _x(B, 8), pt_weight=value),
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(E, E, k=value),
        "began_update": lambda: FG.began_update(0.5, E, E, gamma=value),
        "clip_weights_": lambda: FG.clip_weights_(LIN, clip_value=value),
        "adversarial_loss": lambda: FG.adversarial_loss(S, S, "lsgan", real_target=value),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(X, value),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, scaler(), center=value),
        "losses.create": [lambda: losses.create("lsgan", b=value), lambda: losses.create("began", lambda_k=value)]
        + ([] if infinite else [lambda: losses.create("began", k0=value)]),
    }
    if infinite:  # k outside [0, 1] is the k-range row
        del calls["began_discriminator_loss"]
    return calls


def _in_inference_mode(fn):
    with torch.inference_mode():
        return fn()


def _state_without_config():
    state = losses.create("began").state_dict()
    del state["_extra_state"]
    losses.create("began").load_state_dict(state, strict=False)



class _D(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x, labels=None):
        return self.lin(x)


def _env_backend():
    """A bad FASTGAN_BACKEND, read by a fresh thread (the selection is per thread and starts
    from the environment variable); the cached value is restored afterwards."""
    import os
    import threading

    cache = backends._ENV
    saved = dict(cache)
    old = os.environ.get(backends.ENV_VAR)
    os.environ[backends.ENV_VAR] = "nonexistent"
    cache.clear()
    errors: list[BaseException] = []

    def read():
        try:
            backends.get_backend()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    try:
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    finally:
        cache.clear()
        cache.update(saved)
        if old is None:
            del os.environ[backends.ENV_VAR]
        else:
            os.environ[backends.ENV_VAR] = old
    if errors:
        raise errors[0]


def _backend_device():
    restricted = [b for b in fastgan.available_backends() if backends._DEVICES.get(b) is not None]
    if not restricted:
        pytest.skip("every available backend runs on every device")
    with fastgan.use_backend(restricted[0]):
        FG.grad_norm_penalty(torch.empty(B, 3, device="meta"))


def _unavailable():
    names = [n for n, (ok, _) in backends.backend_status().items() if not ok]
    if not names:
        pytest.skip("every backend is available here")
    fastgan.use_backend(names[0])


CALLS: dict[str, dict[str, object]] = {
    "scores-not-tensor": _scores([1.0] * B),
    "scores-not-float": _scores(INT),
    "scores-0dim": _scores(torch.tensor(1.0)),
    "scores-empty-batch": _scores(torch.empty(0, 1), both=True),
    "scores-empty-dim": _scores(torch.empty(B, 0), both=True),
    "scores-shape": {n: (lambda f=f: f(S, _x(B, 2))) for n, f in SCORE2.items()},
    "scores-dtype": {n: (lambda f=f: f(S, S.double())) for n, f in SCORE2.items()},
    "scores-device": {n: (lambda f=f: f(S, META_S)) for n, f in SCORE2.items()},
    "per-sample-shape": _per_sample(bad_first=E[:, None]),
    "per-sample-dtype": {k: v for k, v in _per_sample(bad_second=E.double()).items() if k in ("ebgan_discriminator_loss", "began_discriminator_loss", "began_update")},
    "per-sample-device": {k: v for k, v in _per_sample(bad_second=META_E).items() if k in ("ebgan_discriminator_loss", "began_discriminator_loss", "began_update")},
    "rows-not-float": _rows(lambda t: t.long()),
    "rows-empty": _rows(lambda t: torch.empty((0,) + tuple(t.shape[1:]))),
    "pair-shape": {
        "interpolate": lambda: FG.interpolate(X, X[:, :2], A),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X[:, :2]),
        "reconstruction_error": lambda: FG.reconstruction_error(X, X[:, :, :3], 1),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X[:, :2], scaler()),
    },
    "pair-dtype": {
        "interpolate": lambda: FG.interpolate(X, X.double(), A),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X.double()),
        "reconstruction_error": lambda: FG.reconstruction_error(X, X.double(), 1),
    },
    "alpha-shape": {"interpolate": lambda: FG.interpolate(X, X, torch.rand(B, 1))},
    "alpha-dtype": {"interpolate": lambda: FG.interpolate(X, X, A.double())},
    "alpha-per-sample": {
        "gradient_penalty": [lambda: FG.gradient_penalty(critic, X, X, alpha=torch.rand(B, 3, 1, 1)),
                             lambda: FG.gradient_penalty(critic, X, X, alpha=torch.rand(B + 1, 1))],
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, scaler(), alpha=torch.rand(2)),
        "losses.WGANGPLoss.discriminator_loss": lambda: losses.create("wgan-gp").discriminator_loss(
            critic, X, X, alpha=torch.rand(B, 1, 1, 1, 1)),
    },
    "alpha-not-float": {
        "gradient_penalty": [lambda: FG.gradient_penalty(critic, X, X, alpha=torch.ones(B, dtype=torch.int64)),
                             lambda: FG.gradient_penalty(critic, X, X, alpha=torch.ones(B, dtype=torch.complex64))],
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, None, alpha=A.numpy().astype("int32")),
        "losses.WGANGPLoss.discriminator_loss": lambda: losses.create("wgan-gp").discriminator_loss(
            critic, X, X, alpha=torch.ones(B, dtype=torch.bool)),
    },
    "alpha-device": {
        "interpolate": lambda: FG.interpolate(X, X, torch.empty(B, device="meta")),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, alpha=torch.empty(B, device="meta")),
        "amp.gradient_penalty": [lambda: amp.gradient_penalty(critic, X, X, scaler(), alpha=torch.empty(B, device="meta")),
                                 lambda: amp.gradient_penalty(critic, X, X, None, alpha=torch.empty(B, device="meta"))],
    },
    "generator-type": {
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, generator=0),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, None, generator="seed"),
        "losses.WGANGPLoss.discriminator_loss": lambda: losses.create("wgan-gp").discriminator_loss(
            critic, X, X, generator=torch.manual_seed),
    },
    "gp-weight-twice": {
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, gp_weight=1.0, weight=2.0),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, None, gp_weight=1.0, weight=2.0),
    },
    "target-as-fake": {
        n: (lambda f=f: f(S.clone().requires_grad_(), torch.ones(B, 1)))
        for n, f in SCORE2.items() if n != "adversarial_loss"
    },
    "target-argument": {
        "gan_generator_loss": lambda: FG.gan_generator_loss(S, torch.ones(B, 1)),
        "lsgan_generator_loss": lambda: FG.lsgan_generator_loss(S, torch.ones(B, 1)),
    },
    "sigmoid-logits": {
        "gan_discriminator_loss": lambda: FG.gan_discriminator_loss(torch.sigmoid(S.clone().requires_grad_()).view(-1), S.view(-1)),
        "gan_generator_loss": lambda: FG.gan_generator_loss(torch.sigmoid(S.clone().requires_grad_())),
        "losses.GANLoss.discriminator_loss": lambda: losses.create("gan").discriminator_loss(
            nn.Sequential(nn.Linear(3, 1), nn.Sigmoid()), _x(B, 3), _x(B, 3)),
        "losses.CGANLoss.generator_loss": lambda: losses.create("cgan").generator_loss(
            lambda x, y: torch.sigmoid(x.sum(1, keepdim=True) + y[:, None]), _x(B, 3).requires_grad_(), torch.zeros(B)),
    },
    "number-type": {n: [c] if not isinstance(c, list) else c for n, c in _every_number("1").items()} | {
        "clip_weights_": [lambda: FG.clip_weights_(LIN, clip_value=True)],
        "began_discriminator_loss": [lambda: FG.began_discriminator_loss(E, E, k=None)],
        "adversarial_loss": [lambda: FG.adversarial_loss(S, S, "lsgan", real_target=True)],
        "lsgan_generator_loss": [lambda: FG.lsgan_generator_loss(S, c=torch.tensor(1.0))],
    },
    "number-overflow": _every_number(10**400),
    "number-nan": _every_number(math.nan),
    "number-negative": {
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(X, center=-1.0),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, gp_weight=-10.0),
        "r1_penalty": lambda: FG.r1_penalty(critic, X, gamma=-1.0),
        "ebgan_discriminator_loss": lambda: FG.ebgan_discriminator_loss(E, E, margin=-1.0),
        "ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, _x(B, 8), pt_weight=-0.1),
        "began_update": lambda: FG.began_update(0.0, E, E, lambda_k=-1e-3),
        "clip_weights_": lambda: FG.clip_weights_(LIN, clip_value=-0.01),
        "adversarial_loss": lambda: FG.adversarial_loss(S, S, "hinge", margin=-1.0),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, scaler(), gp_weight=-1.0),
    },
    "number-infinite": _every_number(math.inf, infinite=True),
    "tensor-dtype": _every_tensor_function(lambda t: t.to(torch.float8_e4m3fn)),
    "tensor-layout": _every_tensor_function(lambda t: t.to_sparse()),
    "clip-zero": {
        "clip_weights_": lambda: FG.clip_weights_(LIN, clip_value=0),
        "losses.create": lambda: losses.create("wgan", clip_value=0),
    },
    "clip-parameters": {
        "clip_weights_": [lambda: FG.clip_weights_(42), lambda: FG.clip_weights_([torch.ones(2, dtype=torch.long)])],
    },
    "flag-type": {
        "gan_generator_loss": lambda: FG.gan_generator_loss(S, saturating="yes"),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(X, one_sided=1),
        "gradient_penalty": lambda: FG.gradient_penalty(critic, X, X, one_sided=1),
        "grad_norm_penalty": lambda: FG.grad_norm_penalty(X, 1.0, 1),
        "losses.create": lambda: losses.create("gan", saturating="no"),
    },
    "k-range": {
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(E, E, k=1.5),
        "began_update": lambda: FG.began_update(-0.1, E, E),
        "losses.create": lambda: losses.create("began", k0=2.0),
    },
    "k-tensor": {
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(E, E, k=torch.zeros(1)),
        "began_update": lambda: FG.began_update(torch.zeros(2), E, E),
    },
    "k-device": {
        "began_discriminator_loss": lambda: FG.began_discriminator_loss(E, E, k=torch.empty((), device="meta")),
        "began_update": lambda: FG.began_update(torch.empty((), device="meta"), E, E),
    },
    "p-value": {
        "reconstruction_error": [lambda: FG.reconstruction_error(X, X, p=3), lambda: FG.reconstruction_error(X, X, p=True)],
    },
    "kind-value": {"adversarial_loss": lambda: FG.adversarial_loss(S, S, "bogus")},
    "both-none": {"adversarial_loss": lambda: FG.adversarial_loss(None, None, "bce")},
    "embeddings-batch": {
        "pulling_away_term": lambda: FG.pulling_away_term(_x(1, 8)),
        "ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E[:1], _x(1, 8)),
    },
    "embeddings-mismatch": {"ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, _x(B + 1, 8))},
    "embeddings-dtype": {"ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, _x(B, 8, dtype=torch.float64))},
    "embeddings-device": {"ebgan_generator_loss": lambda: FG.ebgan_generator_loss(E, torch.empty(B, 8, device="meta"))},
    "critic-callable": {
        "gradient_penalty": lambda: FG.gradient_penalty("critic", X, X),
        "r1_penalty": lambda: FG.r1_penalty("critic", X),
        "amp.gradient_penalty": lambda: amp.gradient_penalty("critic", X, X, scaler()),
    },
    "critic-output": {
        "gradient_penalty": lambda: FG.gradient_penalty(lambda x: (x, x), X, X),
        "r1_penalty": lambda: FG.r1_penalty(lambda x: (x, x), X),
        "amp.gradient_penalty": lambda: amp.gradient_penalty(lambda x: (x, x), X, X, scaler()),
    },
    "critic-graph": {
        "gradient_penalty": [lambda: FG.gradient_penalty(lambda x: x.detach().sum(1), X, X),
                             lambda: FG.gradient_penalty(lambda x: LIN.weight.sum().expand(x.shape[0]), X, X)],
        "r1_penalty": [lambda: FG.r1_penalty(lambda x: x.detach().sum(1), X),
                       lambda: FG.r1_penalty(lambda x: torch.ones(x.shape[0]), X)],
        "amp.gradient_penalty": [lambda: amp.gradient_penalty(lambda x: x.detach().sum(1), X, X, scaler()),
                                 lambda: amp.gradient_penalty(lambda x: LIN(x.detach()[:, 0, 0, :2]), X, X, scaler()),
                                 lambda: amp.gradient_penalty(lambda x: LIN(x.detach()[:, 0, 0, :2]), X, X, None)],
        "losses.WGANGPLoss.discriminator_loss": lambda: losses.create("wgan-gp").discriminator_loss(
            lambda x: LIN.bias.sum().expand(x.shape[0], 1), _x(B, 3), _x(B, 3)),
    },
    "penalty-inference-mode": {
        "gradient_penalty": lambda: _in_inference_mode(lambda: FG.gradient_penalty(critic, X, X)),
        "r1_penalty": lambda: _in_inference_mode(lambda: FG.r1_penalty(critic, X)),
        "amp.gradient_penalty": [lambda: _in_inference_mode(lambda: amp.gradient_penalty(critic, X, X, scaler())),
                                 lambda: _in_inference_mode(lambda: amp.gradient_penalty(critic, X, X, None))],
    },
    "scaler-type": {"amp.gradient_penalty": lambda: amp.gradient_penalty(critic, X, X, scaler="yes")},
    "interval-type": {"losses.create": lambda: losses.create("wgan-gp", gp_interval=2.0)},
    "interval-range": {"losses.create": lambda: losses.create("wgan-gp", gp_interval=0)},
    "loss-name": {"losses.create": lambda: losses.create(3)},
    "loss-unknown": {"losses.create": lambda: losses.create("vanilla")},
    "loss-hparam": {"losses.create": lambda: losses.create("wgan", lr=1e-4)},
    "loss-forward": {"losses.GANLossBase.__call__": lambda: losses.create("gan")(S)},
    "cgan-labels": {
        "losses.CGANLoss.discriminator_loss": lambda: losses.create("cgan").discriminator_loss(_D(), _x(B, 3), _x(B, 3)),
        "losses.CGANLoss.generator_loss": lambda: losses.create("cgan").generator_loss(_D(), _x(B, 3)),
    },
    "cgan-labels-type": {
        "losses.CGANLoss.discriminator_loss": [
            lambda: losses.create("cgan").discriminator_loss(_D(), _x(B, 3), _x(B, 3), [0, 1, 2, 0]),
            lambda: losses.create("cgan").discriminator_loss(_D(), _x(B, 3), _x(B, 3), torch.zeros(B), fake_labels=[0, 1]),
        ],
    },
    "d-output": {"losses.GANLoss.discriminator_loss": lambda: losses.create("gan").discriminator_loss(lambda x: [1.0], _x(B, 3), _x(B, 3))},
    "ae-output": {
        "losses.EBGANLoss.discriminator_loss": lambda: losses.create("ebgan").discriminator_loss(lambda x: [x], _x(B, 3), _x(B, 3)),
        "losses.BEGANLoss.discriminator_loss": lambda: losses.create("began").discriminator_loss(lambda x: (1.0, x), _x(B, 3), _x(B, 3)),
    },
    "ebgan-embedding": {"losses.EBGANLoss.generator_loss": lambda: losses.create("ebgan").generator_loss(lambda x: 2 * x, _x(B, 3))},
    "began-device": {
        "losses.BEGANLoss.discriminator_loss": lambda: losses.create("began").discriminator_loss(
            lambda v: 2 * v, torch.empty(B, 3, device="meta"), torch.empty(B, 3, device="meta")),
    },
    "state-config": {
        "losses.GANLossBase.load_state_dict": [
            lambda: losses.create("wgan").load_state_dict(losses.create("wgan", clip_value=0.5).state_dict()),
            lambda: losses.create("began").load_state_dict(losses.create("lsgan").state_dict(), strict=False),
        ],
    },
    "state-no-config": {"losses.GANLossBase.load_state_dict": _state_without_config},
    "backend-type": {"use_backend": lambda: fastgan.use_backend(None)},
    "backend-unknown": {"use_backend": lambda: fastgan.use_backend("fast")},
    "backend-unavailable": {"use_backend": _unavailable},
    "backend-env": {"backends.get_backend": _env_backend},
    "backend-device": {"*": _backend_device},
}


def test_every_row_has_calls_and_every_call_a_row():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids in docs/errors.md"
    assert set(ids) == set(CALLS), f"rows without calls: {sorted(set(ids) - set(CALLS))}; calls without a row: {sorted(set(CALLS) - set(ids))}"
    for row in ROWS:
        assert set(row["functions"]) == set(CALLS[row["id"]]), (
            f"{row['id']}: the table names {sorted(row['functions'])}, the test calls {sorted(CALLS[row['id']])}"
        )
        assert row["exception"] in EXCEPTIONS, row


def test_every_public_function_appears_in_the_table():
    named = {f for r in ROWS for f in r["functions"]}
    for fn in FG.__all__:
        assert fn in named, f"fastgan.functional.{fn} has no row in docs/errors.md"


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_row(row):
    exc = EXCEPTIONS[row["exception"]]
    for fn_name, calls in CALLS[row["id"]].items():
        for call in calls if isinstance(calls, list) else [calls]:
            with pytest.raises(Exception) as info:
                call()
            err = info.value
            if isinstance(err, pytest.skip.Exception):  # pragma: no cover
                raise err
            assert type(err) is exc, f"{row['id']} / {fn_name}: raised {type(err).__name__}: {err}, expected {row['exception']}"
            message = str(err)
            assert row["excerpt"] in message, f"{row['id']} / {fn_name}: {row['excerpt']!r} not in {message!r}"
            names = [a for a in row["arguments"] if re.fullmatch(r"[A-Za-z_][\w\[\]]*", a)]
            if names and exc is not RuntimeError:
                assert any(re.search(rf"\b{re.escape(n.split('[')[0])}\b", message) for n in names), (
                    f"{row['id']} / {fn_name}: the message names none of {names}: {message!r}"
                )
