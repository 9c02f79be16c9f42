"""grader/engine/ranks.py: a job runs on N processes in one gloo group, and every way a rank can fail is one clean
failure in the caller within the time it allows, naming the rank, with no process left behind."""

import os
import signal
import time

import pytest
import torch

import rank_jobs
from grader.engine import ranks
from grader.engine.calls import GradeFailure, NotStarted


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch):
    monkeypatch.setattr(ranks, "COLLECTIVE_TIMEOUT", 3.0)
    yield
    ranks.close_all()


def run(fn, world_size=2, timeout=30.0, x=None):
    return ranks.run(world_size, rank_jobs.call, fn, {"x": torch.ones(3) if x is None else x}, timeout=timeout)


def alive(pids) -> list[int]:
    out = []
    for p in pids:
        try:
            os.kill(p, 0)
            out.append(p)
        except ProcessLookupError:
            pass
    return out


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_every_rank_runs_the_job_and_the_collectives_join_them(world_size):
    results = run(rank_jobs.summed, world_size)
    total = sum(range(1, world_size + 1))
    assert [r["rank"] for r in results] == list(range(world_size))
    assert all(r["world_size"] == world_size and torch.equal(r["sum"], torch.full((3,), float(total))) for r in results)


def test_a_group_stays_up_for_the_next_job_and_close_all_ends_it():
    first = [int(p) for p in run(rank_jobs.pid)]
    assert [int(p) for p in run(rank_jobs.pid)] == first
    ranks.close_all()
    assert not alive(first)


def test_a_learner_s_exception_on_one_rank_names_the_rank_and_ends_the_group():
    pids = [int(p) for p in run(rank_jobs.pid)]
    start = time.monotonic()
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.raises_on_rank_1)
    assert str(e.value).startswith("on rank 1 of 2: raises_on_rank_1 raised ValueError: rank one gives up")
    assert time.monotonic() - start < ranks.COLLECTIVE_TIMEOUT  # rank 0, stuck in its all_reduce, is not waited for
    assert not alive(pids)
    assert run(rank_jobs.summed)[0]["sum"].tolist() == [3.0] * 3  # a fresh group


def test_a_collective_only_some_ranks_call_is_reported_after_gloo_s_timeout():
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.all_reduce_on_rank_0_only)
    message = str(e.value)
    assert message.startswith("on rank 0 of 2: all_reduce_on_rank_0_only: a collective failed (Timed out")
    assert "rank(s) 1 had finished without it" in message and "same collectives" in message
    assert "\n" in message and "Traceback" not in message


def test_a_rank_that_dies_is_named_with_its_exit_code():
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.dies_on_rank_1)
    assert "rank 1 of 2 died (exit code 3)" in str(e.value)


def test_an_endless_loop_is_cut_by_the_collective_timeout():
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.loops_on_rank_1)
    assert "never got there (still running" in str(e.value)


def test_an_endless_loop_on_every_rank_is_cut_by_the_job_timeout():
    start = time.monotonic()
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.loops, world_size=1, timeout=2.0)
    assert "did not answer within 2 s: an endless loop?" in str(e.value)
    assert time.monotonic() - start < 10


def test_an_input_changed_in_place_by_a_collective_is_named():
    with pytest.raises(GradeFailure) as e:
        run(rank_jobs.reduces_its_input)
    assert "changed its input 'x' in place" in str(e.value) and "dist.all_reduce(x)" in str(e.value)


def test_a_stub_is_not_started_without_starting_a_group():
    with pytest.raises(NotStarted) as e:
        run(rank_jobs.not_started)
    assert str(e.value) == "not started: implement not_started in tests/rank_jobs.py"
    assert not ranks._groups


def test_the_caller_s_time_limit_ends_every_rank():
    """The plugin's time limit (SIGALRM) interrupts the caller's wait: the ranks are terminated, not left running."""
    pids = [int(p) for p in run(rank_jobs.pid)]

    class Expired(BaseException):
        pass

    def expire(signum, frame):
        raise Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Expired):
            run(rank_jobs.loops_on_rank_1, timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    time.sleep(0.5)
    assert not alive(pids)
