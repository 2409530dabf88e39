"""``fastgan train --threads auto``: the chooser's decisions (on synthetic step times, never on
the clock) and the one property that makes it safe: on the 2-D data the thread count changes
no result."""

from __future__ import annotations

import json

import pytest
import torch

from fastgan.train import main as train_main
from fastgan.train import make_trainer
from fastgan.train.threads import ThreadChooser, auto_counts


class Machine:
    """A fake machine: the step time of each thread count, changeable mid-run."""

    def __init__(self, times: dict[int, float]) -> None:
        self.times = dict(times)
        self.threads = None
        self.log: list[int] = []

    def set(self, n: int) -> None:
        self.threads = n
        self.log.append(n)

    def run(self, chooser: ThreadChooser, steps: int) -> None:
        for _ in range(steps):
            chooser(self.times[self.threads])


def chooser_on(machine: Machine, counts=(1, 2), **kw) -> ThreadChooser:
    kw = {"probe_every": 50, "probe_steps": 4, "warmup": 10, **kw}
    return ThreadChooser(counts, set_threads=machine.set, **kw)


def test_it_moves_to_the_faster_count_and_stays():
    m = Machine({1: 0.010, 2: 0.007})
    c = chooser_on(m)
    assert m.threads == 1 and not c.probing
    m.run(c, 200)
    assert c.current == 2 and m.threads == 2
    assert c.choices[0] == (0, 1) and c.choices[1][1] == 2 and c.choices[1][0] <= 20
    assert len(c.choices) == 2  # later probes find nothing faster


def test_it_stays_on_one_thread_when_more_are_not_faster_enough():
    m = Machine({1: 0.010, 2: 0.0095})  # 5 %: under min_gain
    c = chooser_on(m)
    m.run(c, 500)
    assert c.current == 1 and c.choices == [(0, 1)]
    assert 2 in m.log  # it did try


def test_a_catastrophic_probe_ends_after_one_timed_step():
    m = Machine({1: 0.010, 2: 1.0})
    c = chooser_on(m, probe_steps=6)
    m.run(c, 11)  # warm-up done: the next step runs on 2 threads
    assert c.probing and m.threads == 2
    m.run(c, 2)  # the untimed first step, then one timed step 100x slower
    assert not c.probing and m.threads == 1 and c.current == 1


def test_a_losing_probe_backs_off():
    m = Machine({1: 0.010, 2: 0.050})
    c = chooser_on(m)
    m.run(c, 2000)
    probes = sum(1 for a, b in zip(m.log, m.log[1:]) if (a, b) == (1, 2))
    assert 2 <= probes <= 6  # intervals 50, 100, 200, …, not one every 50 steps


def test_load_arriving_sends_it_back_to_one_thread():
    m = Machine({1: 0.010, 2: 0.007})
    c = chooser_on(m, probe_every=10_000)  # no scheduled probe after the first
    m.run(c, 100)
    assert c.current == 2
    m.times = {1: 0.012, 2: 0.200}  # another job takes a core
    m.run(c, 30)
    assert c.current == 1 and c.choices[-1][1] == 1


def test_three_counts_pick_the_fastest():
    m = Machine({1: 0.010, 2: 0.006, 4: 0.004})
    c = chooser_on(m, counts=(1, 2, 4))
    m.run(c, 100)
    assert c.current == 4


@pytest.mark.parametrize("bad", [{"counts": []}, {"counts": [0, 1]}, {"probe_steps": 0}, {"warmup": 0},
                                 {"probe_every": 2.5}, {"abort_factor": 1.0}, {"slowdown": float("nan")},
                                 {"min_gain": 1.0}, {"max_interval": 0}])
def test_bad_arguments_are_refused(bad):
    kw = {"counts": (1, 2), **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        ThreadChooser(kw.pop("counts"), set_threads=lambda n: None, **kw)


def test_a_step_time_that_is_not_a_duration_is_not_timed():
    m = Machine({1: 0.010, 2: 0.007})
    c = chooser_on(m)
    for bad in (float("nan"), -1.0, float("inf")):
        c(bad)
    assert c.steps == 3 and c.current == 1 and not c.probing
    m.run(c, 200)
    assert c.current == 2


def test_auto_counts_follow_the_cores():
    assert auto_counts(1) == (1,) and auto_counts(2) == (1, 2) and auto_counts(3) == (1, 2)
    assert auto_counts(16) == (1, 2, 4)


@pytest.mark.parametrize("loss, data", [("wgan-gp", "grid25"), ("ebgan", "ring8"), ("cgan", "ring8")])
def test_switching_threads_while_training_changes_no_weight(loss, data):
    """The chooser may switch at any step; on the 2-D data the weights must be bit-identical to a
    run on one thread."""
    n = torch.get_num_threads()
    kw = {"width": 64, "steps": 40, "eval_every": 0}
    try:
        torch.set_num_threads(1)
        a = make_trainer(loss, data, **kw)
        a.fit(progress=False)
        b = make_trainer(loss, data, **kw)
        flips = iter(range(10**6))
        b.fit(progress=False, on_step=lambda s: torch.set_num_threads((2, 4, 1)[next(flips) % 3]))  # 2, 4, 1, …
    finally:
        torch.set_num_threads(n)
    for p, q in zip([*a.G.parameters(), *a.D.parameters()], [*b.G.parameters(), *b.D.parameters()]):
        assert torch.equal(p, q)


def test_the_cli_records_its_choices_and_gives_the_threads_back(tmp_path):
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # the caller's own setting
        out = tmp_path / "run"
        args = ["train", "--loss", "gan", "--data", "ring8", "--steps", "30", "--width", "16", "--no-progress",
                "--no-plots", "--out", str(out)]
        assert train_main(args[1:]) == 0
        assert torch.get_num_threads() == 3
        m = json.loads((out / "metrics.json").read_text())
        assert m["thread_choices"][0] == [0, 1] and all(t in auto_counts() for _, t in m["thread_choices"])
        assert train_main([*args[1:], "--threads", "2", "--overwrite"]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert m["thread_choices"] is None and m["torch_threads"] == 2 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(n)
