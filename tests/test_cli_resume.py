"""``fastgan train`` never loses work: ``--resume`` from a file that is not a usable checkpoint
is one line and exit 2 with the file untouched; a run into an ``--out`` that holds another run's
checkpoint is refused unless ``--overwrite``; Ctrl-C stops after a whole step with the checkpoint
saved."""

from __future__ import annotations

import collections
import os
import pickle
import signal

import pytest
import torch

from fastgan import cli
from fastgan.train import Trainer, make_trainer
from fastgan.train.loop import CHECKPOINT_KEYS, CheckpointError, read_checkpoint

TINY = ["--loss", "gan", "--data", "ring8", "--width", "8", "--depth", "1", "--batch-size", "8", "--eval-samples", "10",
        "--lr-decay", "none", "--no-plots", "--no-progress"]


class NotATensor:
    """A class ``torch.load(weights_only=True)`` refuses to unpickle."""

    def __init__(self) -> None:
        self.payload = 42


@pytest.fixture(autouse=True)
def _outside_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    n = torch.get_num_threads()  # fastgan train sets one thread
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("good")
    n = torch.get_num_threads()
    try:
        assert cli.main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(n)
    return out


def _snapshot(path) -> tuple:
    """Bytes and modification time of a file (or the listing of a folder)."""
    st = os.stat(path)
    if os.path.isdir(path):
        return ("dir", sorted(os.listdir(path)), st.st_mtime_ns)
    with open(path, "rb") as f:
        return (f.read(), st.st_mtime_ns, st.st_size)


def _usage_error(capsys, argv) -> str:
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, (status, err)
    return err.strip()


def _good_state(good_run) -> dict:
    return torch.load(good_run / "checkpoint.pt", weights_only=True)


def _bad_files(good_run) -> dict:
    """name -> writer(path) of every kind of file --resume must refuse."""
    raw = (good_run / "checkpoint.pt").read_bytes()
    state = _good_state(good_run)

    def without(key):
        return lambda p: torch.save({k: v for k, v in state.items() if k != key}, p)

    return {
        "truncated": lambda p: open(p, "wb").write(raw[: len(raw) // 2]),
        "truncated_tail": lambda p: open(p, "wb").write(raw[:-10]),
        "empty": lambda p: open(p, "wb").write(b""),
        "garbage_text": lambda p: open(p, "w").write("hello, not a checkpoint\n" * 20),
        "garbage_bytes": lambda p: open(p, "wb").write(bytes(range(256)) * 4),
        "plain_pickle": lambda p: pickle.dump({"a": 1}, open(p, "wb")),
        "foreign_state_dict": lambda p: torch.save(torch.nn.Linear(2, 2).state_dict(), p),
        "foreign_dict": lambda p: torch.save({"model": {"w": torch.ones(2)}, "epoch": 3}, p),
        "foreign_list": lambda p: torch.save([torch.ones(2)], p),
        "foreign_tensor": lambda p: torch.save(torch.ones(3), p),
        "counter": lambda p: torch.save(collections.Counter(a=1), p),
        "other_format": lambda p: torch.save({**state, "format": "something/2"}, p),
        "missing_opt_g": without("opt_g"),
        "missing_rng": without("rng"),
        "missing_config": without("config"),
        "missing_step": without("step"),
        "wrong_type": lambda p: torch.save({**state, "G": [1, 2]}, p),
        "rng_incomplete": lambda p: torch.save({**state, "rng": {"torch": state["rng"]["torch"]}}, p),
        "unsafe_class": lambda p: torch.save({**state, "extra": NotATensor()}, p),
        "unsafe_only": lambda p: torch.save(NotATensor(), p),
        "other_networks": lambda p: torch.save({**state, "G": {"bogus": torch.ones(1)}}, p),
        "other_configuration": lambda p: torch.save({**state, "config": {**state["config"], "width": 16}}, p),
    }


@pytest.mark.parametrize("kind", [
    "truncated", "truncated_tail", "empty", "garbage_text", "garbage_bytes", "plain_pickle", "foreign_state_dict",
    "foreign_dict", "foreign_list", "foreign_tensor", "counter", "other_format", "missing_opt_g", "missing_rng",
    "missing_config", "missing_step", "wrong_type", "rng_incomplete", "unsafe_class", "unsafe_only", "other_networks",
    "other_configuration",
])
def test_resume_from_a_bad_checkpoint_is_one_line_and_leaves_it_untouched(kind, good_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    ckpt = out / "checkpoint.pt"
    _bad_files(good_run)[kind](str(ckpt))
    before, listing = _snapshot(ckpt), sorted(os.listdir(out))
    line = _usage_error(capsys, ["train", *TINY, "--steps", "4", "--out", str(out), "--resume"])
    assert line.startswith("fastgan train: --resume: ")
    assert _snapshot(ckpt) == before, "the checkpoint was modified"
    assert sorted(os.listdir(out)) == listing, "something was written to --out"
    if kind.startswith("unsafe"):
        assert "NotATensor" in line and "weights_only=True" in line
    elif kind.startswith("missing"):
        assert kind.split("_", 1)[1] in line and "missing" in line
    elif kind.startswith("foreign") or kind in ("counter", "other_format"):
        assert "not a fastgan train checkpoint" in line
    elif kind == "other_configuration":
        assert "width" in line and "another configuration" in line
    else:
        assert str(ckpt) in line


def test_resume_from_a_folder_or_nothing(good_run, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoint.pt").mkdir(parents=True)
    (out / "checkpoint.pt" / "inside").write_text("keep me")
    before = _snapshot(out / "checkpoint.pt")
    line = _usage_error(capsys, ["train", *TINY, "--steps", "4", "--out", str(out), "--resume"])
    assert "is a folder" in line and _snapshot(out / "checkpoint.pt") == before
    assert (out / "checkpoint.pt" / "inside").read_text() == "keep me"
    line = _usage_error(capsys, ["train", *TINY, "--steps", "4", "--out", str(tmp_path / "none"), "--resume"])
    assert "no checkpoint" in line and not (tmp_path / "none").exists()


def test_read_checkpoint_accepts_the_real_one_and_names_every_key(good_run):
    state = read_checkpoint(str(good_run / "checkpoint.pt"))
    assert set(CHECKPOINT_KEYS) <= set(state) and state["step"] == 2
    t = make_trainer("gan", "ring8", width=8, depth=1, batch_size=8, steps=4, lr_decay="none", eval_samples=10)
    t.load(str(good_run / "checkpoint.pt"))
    assert t.step == 2
    with pytest.raises(CheckpointError):  # a ValueError, as before
        t.check_compatible({"format": "fastgan.train/1"})
    assert issubclass(CheckpointError, ValueError)


# ------------------------------------------------------------------------- --overwrite
def test_a_run_into_another_runs_out_is_refused_unless_overwrite(good_run, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--steps", "2", "--out", str(out)]) == 0
    before = _snapshot(out / "checkpoint.pt")
    line = _usage_error(capsys, ["train", *TINY, "--steps", "2", "--seed", "1", "--out", str(out)])
    assert f"--out {out}" in line and "--resume" in line and "--overwrite" in line and "checkpoint.pt" in line
    assert _snapshot(out / "checkpoint.pt") == before
    # --overwrite replaces it
    assert cli.main(["train", *TINY, "--steps", "2", "--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["seed"] == 1
    # --resume continues it
    assert cli.main(["train", *TINY, "--steps", "3", "--seed", "1", "--out", str(out), "--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_a_distributed_runs_checkpoints_count_too(tmp_path, capsys):
    out = tmp_path / "ddp"
    out.mkdir()
    (out / "checkpoint.rank1.pt").write_bytes(b"a rank's checkpoint")
    line = _usage_error(capsys, ["train", *TINY, "--steps", "1", "--out", str(out)])
    assert "checkpoint.rank1.pt" in line and "--overwrite" in line


def test_an_out_without_a_checkpoint_is_used(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "README").write_text("mine")
    assert cli.main(["train", *TINY, "--steps", "1", "--out", str(out)]) == 0
    assert (out / "README").read_text() == "mine" and (out / "checkpoint.pt").is_file()


def test_overwrite_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "--overwrite" in capsys.readouterr().out


# ------------------------------------------------------------------------------- Ctrl-C
def test_fit_stops_after_a_whole_step_and_saves(tmp_path):
    t = make_trainer("wgan-gp", "ring8", width=8, depth=1, batch_size=8, steps=10, lr_decay="none")
    t.fit(str(tmp_path), progress=False, stop=lambda: t.step >= 3)
    assert t.step == 3
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 3


def test_ctrl_c_saves_the_checkpoint_and_resume_finishes(tmp_path, capsys, monkeypatch, request):
    out = tmp_path / "run"
    real_step = Trainer.train_step

    def step_then_interrupt(self):
        logs = real_step(self)
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: handled between steps
        return logs

    monkeypatch.setattr(Trainer, "train_step", step_then_interrupt)
    # Ctrl-C as in a terminal, whatever this test runner was started with (a background job
    # starts with it ignored, and fastgan train leaves an ignored signal ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    capsys.readouterr()
    assert cli.main(["train", *TINY, "--steps", "6", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "SIGINT" in err and "--resume" in err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not (out / "metrics.json").exists()
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    assert cli.main(["train", *TINY, "--steps", "6", "--out", str(out), "--resume"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 6


def test_an_ignored_ctrl_c_stays_ignored(tmp_path, monkeypatch, request):
    """A background job starts with SIGINT ignored: fastgan train does not take it over."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    seen = []
    real_step = Trainer.train_step

    def step_and_look(self):
        seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_and_look)
    assert cli.main(["train", *TINY, "--steps", "3", "--out", str(tmp_path / "run")]) == 0
    assert seen and all(i is signal.SIG_IGN for i, _ in seen)
    assert all(getattr(t, "__name__", "") == "_handle" for _, t in seen)  # SIGTERM still stops the run
