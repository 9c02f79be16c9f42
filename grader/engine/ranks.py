"""Run a function on N ranks: N processes on this machine in one torch.distributed process group (gloo), each
calling the same job, as tensor-parallel code runs under torchrun.

The processes are forked from a clean server process (grader.engine.children, with torch imported once), so a group
starts in well under a second, and they die with the process that started them; a group of each size stays up for
the jobs that follow and is closed by close_all(). The ranks meet through a store that this process serves, and talk
over gloo, both on the loopback interface only: nothing listens on the network. A learner's fault on any rank is one
GradeFailure (or NotStarted) in the calling process, with the rank and the learner's line: an exception, a rank that
dies, a collective that not every rank joins (gloo gives up after COLLECTIVE_TIMEOUT seconds; CollectiveWait), or no
answer within the job's timeout. After a fault the group is terminated and the next job starts a fresh one, so
nothing is ever left waiting."""

import ast
import datetime
import importlib
import inspect
import io
import multiprocessing
import multiprocessing.connection
import os
import re
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from . import children, sandbox
from .calls import GradeFailure, NotStarted, learner_error_message, not_started_message, tensors_in
from ..i18n import say

COLLECTIVE_TIMEOUT = 20.0  # seconds a rank waits in a collective for the others before gloo raises
JOB_TIMEOUT = 120.0  # seconds the caller waits for every rank's answer
GRACE = 1.0  # after one rank fails, seconds to wait for the others' reports before the group is terminated
WAITING_NOTE = 2.0  # seconds after some ranks finished a job and others did not, before a line says they wait
LOOPBACK = "127.0.0.1"
GLOO_WORDS = ("gloo", "Connection reset", "Connection closed", "Timed out waiting")


def reference(fn: Callable) -> dict:
    """How a rank finds fn: its module, qualified name, and the folder its package is imported from."""
    fn = inspect.unwrap(fn)
    file = getattr(sys.modules[fn.__module__], "__file__", None)
    # exercises/ex17.py -> the kit's folder
    root = Path(file).resolve().parents[fn.__module__.count(".")] if file else None
    return {"module": fn.__module__, "name": fn.__qualname__, "root": str(root) if root else None}


def _resolve(ref: dict) -> Callable:
    from . import impl as impls

    if ref["root"]:  # first on the path: the learner's exercises/ is the one beside it
        sys.path[:] = [ref["root"], *(p for p in sys.path if p != ref["root"])]
    package, _, name = ref["module"].partition(".")
    exercise = package in impls.IMPLS and name.startswith("ex")
    # a broken earlier exercise is the reference there
    with impls.reference_for_unimportable(package, name) if exercise else nullcontext():
        value = importlib.import_module(ref["module"])
    for part in ref["name"].split("."):
        value = getattr(value, part)
    return value


def _encode(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _decode(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


def _is_collective_failure(error: BaseException) -> bool:
    return isinstance(error, RuntimeError) and any(word in str(error) for word in GLOO_WORDS)


def _run_job(job: dict) -> tuple:
    """One job on this rank: ("ok", result bytes), ("not started", message) or ("failing", message, collective?)."""
    from . import impl as impls

    os.environ.update(job["env"])
    target = None
    try:
        target = _resolve(job["target"])
        module = sys.modules[inspect.unwrap(target).__module__]
        isolate = job["isolated"] and module.__name__.partition(".")[0] in impls.IMPLS
        kwargs = job["kwargs"]
        # copies, not _version: a collective changes a tensor without counting it
        before = [(name, t, t.clone()) for name, value in kwargs.items() for t in tensors_in(value)]
        with impls.isolated(module) if isolate else nullcontext():
            result = _resolve(job["job"])(target, **kwargs)
        changed = [name for name, t, copy in before if not torch.equal(t, copy)]
        if changed:
            who = job["target"]["name"]
            return ("failing", say("ranks.in_place", who=who, name=repr(changed[0])), False)
        return ("ok", _encode(result))
    except NotImplementedError as e:
        return ("not started", not_started_message(target, e))
    except NotStarted as e:
        return ("not started", str(e))
    except GradeFailure as e:
        return ("failing", str(e), False)
    except (Exception, SystemExit) as e:  # whatever the learner's code raised, reported with its line
        return ("failing", learner_error_message(e, target), _is_collective_failure(e))


def _serve(rank: int, world_size: int, port: int, timeout: float, conn) -> None:
    """A rank: join the group (its store at LOOPBACK:port, gloo on the loopback interface), then run jobs until told
    to stop."""
    import torch.distributed as dist

    children.started()
    torch.set_num_threads(1)  # the ranks share the machine's cores
    if (interface := loopback_interface()) is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = interface  # else gloo listens where the hostname resolves, maybe the LAN
    limit = datetime.timedelta(seconds=timeout)
    store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=limit)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size, timeout=limit)
    try:
        while (job := conn.recv()) is not None:
            conn.send(_run_job(job))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        dist.destroy_process_group()


def loopback_interface() -> str | None:
    """The name of the loopback network interface ("lo" on Linux, "lo0" on macOS), or None if there is none."""
    names = [name for _, name in socket.if_nameindex()] if hasattr(socket, "if_nameindex") else []
    return next((name for name in ("lo", "lo0") if name in names), None)


def _store(world_size: int, timeout: float):
    """The group's store (a TCPStore that this process serves) and its port, listening on LOOPBACK only: the store is
    handed a socket bound there, as with a port alone it would listen on every interface."""
    import torch.distributed as dist

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((LOOPBACK, 0))
        listener.listen(world_size)
        port = listener.getsockname()[1]
        store = dist.TCPStore(LOOPBACK, port, world_size, is_master=True, timeout=datetime.timedelta(seconds=timeout),
                              wait_for_workers=False, master_listen_fd=listener.fileno())
    except BaseException:
        listener.close()
        raise
    listener.detach()  # the store closes it
    return store, port


class Group:
    """world_size ranks in one gloo process group, waiting for jobs."""

    def __init__(self, world_size: int, collective_timeout: float | None = None):
        ctx = children.context(children.RANKS_PRELOAD)
        collective_timeout = collective_timeout or COLLECTIVE_TIMEOUT
        self.world_size, self._collective_timeout = world_size, collective_timeout
        self._store, port = _store(world_size, collective_timeout)
        self._conns, self._procs = [], []
        for rank in range(world_size):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(rank, world_size, port, collective_timeout, child), daemon=True,
                            name=f"llama3-kit rank {rank}/{world_size}")
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)

    def run(self, job: dict, timeout: float) -> list:
        """Every rank's result of job, in rank order; a fault on any rank raises, and leaves the group closed."""
        try:
            for conn in self._conns:
                conn.send(job)
            replies = self._collect(timeout, job["target"]["name"])
        except BaseException:
            self.close()
            raise
        statuses = {r[0] for r in replies.values()}
        if statuses == {"ok"} and len(replies) == self.world_size:
            return [_decode(replies[rank][1]) for rank in range(self.world_size)]
        if statuses != {"not started"} or len(replies) != self.world_size:
            self.close()  # some rank may still wait in a collective
        raise _failure(job, replies, self.world_size, timeout)

    def _collect(self, timeout: float, who: str) -> dict:
        """rank -> reply, until every rank answered, or GRACE after the first fault, or timeout. When some ranks
        finished and the others have not after WAITING_NOTE seconds, a line says what they wait for."""
        replies: dict[int, tuple] = {}
        deadline = time.monotonic() + timeout
        note_at = None  # when to say that ranks wait, once some finished
        waiting = {**{c: r for r, c in enumerate(self._conns)}, **{p.sentinel: r for r, p in enumerate(self._procs)}}
        while len(replies) < self.world_size:
            now = time.monotonic()
            if note_at is not None and now >= note_at:
                note_at = None
                self._say_waiting(who, replies)
            left = deadline - now
            if left <= 0:
                break
            wake = left if note_at is None else min(left, max(0.0, note_at - now))
            for ready in multiprocessing.connection.wait(list(waiting), wake):
                rank = waiting.pop(ready)
                if rank in replies:
                    continue
                if ready is self._conns[rank]:
                    try:
                        replies[rank] = ready.recv()
                    except (EOFError, OSError):
                        continue  # the rank died: its sentinel says how
                else:
                    self._procs[rank].join(1)
                    replies[rank] = ("died", self._procs[rank].exitcode)
                if replies[rank][0] != "ok" and replies[rank][0] != "not started":
                    deadline = min(deadline, time.monotonic() + GRACE)
                elif replies[rank][0] == "ok" and len(replies) == 1:
                    note_at = time.monotonic() + WAITING_NOTE
        return replies

    def _say_waiting(self, who: str, replies: dict) -> None:
        finished = [r for r, reply in sorted(replies.items()) if reply[0] == "ok"]
        if not finished or len(replies) == self.world_size:
            return
        silent = [r for r in range(self.world_size) if r not in replies]
        sandbox.note(say("ranks.waiting", who=who, silent=", ".join(map(str, silent)), world_size=self.world_size,
                         finished=", ".join(map(str, finished)), timeout=f"{self._collective_timeout:g}"))

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for p in self._procs:
            p.join(0.5)
        for p in self._procs:
            if p.is_alive():
                p.terminate()
                p.join(2)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
        self._store = None  # it stops listening

    @property
    def alive(self) -> bool:
        return bool(self._procs) and all(p.is_alive() for p in self._procs)


class CollectiveWait(GradeFailure):
    """Ranks waited in vain: a collective that not every rank joined, or ranks that never answered. Running the same
    function again would wait again."""


def _gloo_reason(line: str) -> str:
    """gloo's own words, without the exception's name, gloo's source path and its advice: 'Connection closed by
    peer'."""
    words = line.split("RuntimeError: ", 1)[-1]
    return re.sub(r"\[[^\]]*gloo[^\]]*\]\s*", "", words).split(". ")[0].strip()


def _failure(job: dict, replies: dict, world_size: int, timeout: float) -> BaseException:
    """The one error that says best what went wrong: the learner's own error first, then a rank that died, then a
    collective that waited in vain, then ranks that never answered."""
    who = job["target"]["name"]

    def on(rank: int) -> str:
        return say("ranks.on_rank", rank=rank, world_size=world_size)

    by_kind = {kind: [(r, reply) for r, reply in sorted(replies.items()) if reply[0] == kind]
               for kind in ("not started", "failing", "died")}
    if by_kind["not started"]:
        return NotStarted(by_kind["not started"][0][1][1])
    own = [(r, reply) for r, reply in by_kind["failing"] if not reply[2]]
    if own:
        rank, reply = own[0]
        return GradeFailure(on(rank) + reply[1])
    if by_kind["died"]:
        rank, (_, code) = by_kind["died"][0]
        how = say("ranks.signal", signal=-code) if code is not None and code < 0 else say("ranks.exit_code", code=code)
        return GradeFailure(say("ranks.died", who=who, rank=rank, world_size=world_size, how=how))
    finished = [r for r, reply in sorted(replies.items()) if reply[0] == "ok"]
    silent = [r for r in range(world_size) if r not in replies]
    if by_kind["failing"]:
        rank, reply = by_kind["failing"][0]
        first, _, where = reply[1].partition("\n")
        others = (say("ranks.finished_without_it", ranks=", ".join(map(str, finished))) if finished else "") + (
            say("ranks.never_got_there", ranks=", ".join(map(str, silent))) if silent else "")
        failed = say("ranks.collective_failed", who=who, reason=_gloo_reason(first), others=others)
        where = f"\n{where}" if where else ""
        return CollectiveWait(on(rank) + failed + where + "\n" + say("ranks.same_collectives"))
    if finished:
        return CollectiveWait(say("ranks.some_finished", who=who, finished=", ".join(map(str, finished)),
                                  world_size=world_size, silent=", ".join(map(str, silent)), timeout=f"{timeout:g}"))
    return CollectiveWait(say("ranks.no_answer", who=who, silent=", ".join(map(str, silent)), world_size=world_size,
                              timeout=f"{timeout:g}"))


def stub_message(fn: Callable) -> str | None:
    """The message of a function whose whole body is `raise NotImplementedError("...")` (an exercise not started):
    it is not started on any rank either, and no rank need start to say so."""
    fn = inspect.unwrap(fn)
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or not isinstance(body[0].exc, ast.Call):
        return None
    call = body[0].exc
    if not (isinstance(call.func, ast.Name) and call.func.id == "NotImplementedError"):
        return None
    text = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else ""
    return not_started_message(fn, NotImplementedError(text))


_groups: dict[int, Group] = {}


def run(world_size: int, job: Callable, target: Callable, kwargs: dict, timeout: float = JOB_TIMEOUT,
        isolated: bool = True) -> list:
    """job(target, **kwargs) on each of world_size ranks; their results in rank order. target is the function under
    test (its module's earlier exercises bound to the reference when isolated, as the graded tests do)."""
    if (message := stub_message(target)) is not None:
        raise NotStarted(message)
    group = _groups.get(world_size)
    if group is None or not group.alive:
        group = _groups[world_size] = Group(world_size)
    spec = {"job": reference(job), "target": reference(target), "kwargs": kwargs, "isolated": isolated,
            "env": {k: v for k, v in os.environ.items() if k.startswith("LLAMA3_KIT_")}}
    try:
        return group.run(spec, timeout)
    finally:
        if not group.alive:
            _groups.pop(world_size, None)


def close_all() -> None:
    """Stop every group (the end of a test run)."""
    while _groups:
        _groups.popitem()[1].close()
