"""grader/engine/ranks.py: a job runs on N processes in one gloo group, and every way a rank can fail is one clean
failure in the caller within the time it allows, naming the rank, with no process left behind; nothing listens
beyond the loopback interface; after the first collective that waits in vain, the function's other cases fail at
once."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import rank_jobs
from grader.engine import ranks
from grader.engine.calls import GradeFailure, NotStarted, TimeLimitExceeded


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


def listening(pid: int) -> list[str]:
    """The addresses on which process pid listens for TCP connections (Linux), e.g. ["127.0.0.1:40123"]."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # each 32-bit word is host-endian
                found.append(f"{socket.inet_ntop(family, raw)}:{int(port, 16)}")
    return found


def loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host.startswith("127.") or host == "::1"


LISTENING = """
import json, os, sys, socket
sys.path.insert(0, {tests!r})
import torch
from grader.engine import ranks
import rank_jobs, test_ranks
if {hostname!r}:
    socket.sethostname({hostname!r})
pids = [int(p) for p in ranks.run(2, rank_jobs.call, rank_jobs.pid, {{"x": torch.ones(3)}})] + [os.getpid()]
print(json.dumps({{"hostname": socket.gethostname(), "listening": [a for p in pids for a in test_ranks.listening(p)]}}))
ranks.close_all()
"""


def lan_address() -> str | None:
    """An address of this machine's beyond the loopback (the one it would reach the network from), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("where", ["here", "hostname resolves to the LAN"])
def test_the_ranks_and_their_store_listen_on_the_loopback_only(where):
    """Gloo listens where the hostname resolves unless told otherwise; here the hostname is set (in a namespace of
    its own) to an address of this machine's on the network."""
    hostname, prefix = "", []
    if where != "here":
        hostname = lan_address()
        if hostname is None or subprocess.run(["unshare", "-U", "-r", "-u", "true"], capture_output=True).returncode:
            pytest.skip("needs an address beyond the loopback and unshare (user and UTS namespaces)")
        prefix = ["unshare", "-U", "-r", "-u"]
    code = LISTENING.format(tests=str(Path(__file__).parent), hostname=hostname)
    out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["hostname"] == (hostname or socket.gethostname())
    assert all(loopback(a) for a in found["listening"]), found
    assert len(found["listening"]) >= 3, found  # each rank's gloo, and the store


def test_after_a_collective_waited_in_vain_the_function_s_other_cases_and_tests_fail_at_once(capfd):
    """Exercise 17's golden calls of parallel_embed, on 2 and 4 ranks: only the first waits for gloo's timeout, and a
    line says what the ranks wait for while it does."""
    from grader.engine import goldens, models
    from grader.engine.plugin import GoldenCases

    model = models.tiny("tiny-llama3")
    calls = [g for g in goldens.read(model.golden_dir, "ex17_tensor_parallel")
             if g.call.function == "parallel_embed" and g.call.kwargs["world_size"] > 1]
    timed_out: dict = {}
    cases = GoldenCases(model, calls, "cpu", timed_out, "test_parallel_embed[tiny-llama3]")
    target = rank_jobs.parallel_embed_on_rank_0_only
    start = time.monotonic()
    with pytest.raises(GradeFailure) as e:
        cases.check(target)
    assert time.monotonic() - start < 2 * ranks.COLLECTIVE_TIMEOUT
    assert str(e.value).startswith("on rank 0 of 2: parallel_embed_on_rank_0_only: a collective failed (Timed out")
    assert f"({len(calls) - 1} more of {len(calls)} cases not run: they would wait the same way)" in str(e.value)
    assert timed_out[("rank_jobs", "parallel_embed_on_rank_0_only")].startswith(
        "not run: parallel_embed_on_rank_0_only waited in vain in a collective in test_parallel_embed[tiny-llama3]")
    assert ("parallel_embed_on_rank_0_only: rank(s) 1 of 2 finished, rank(s) 0 not yet; if they wait in a collective "
            "that the others did not call, gloo gives up after 3 s") in capfd.readouterr().err
    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        GoldenCases(model, calls, "cpu", timed_out, "test_parallel_embed[tiny-llama3.2]").check(target)
    assert time.monotonic() - start < 1
