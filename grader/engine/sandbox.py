"""The learner's code runs in a child process: the grading process collects the graded tests and hands them one by
one to a worker process, which runs each as pytest would and sends back pytest's reports.

The worker's address space is capped (--memory-limit GB, by default MEMORY_SHARE of the machine's memory), so an
allocation beyond it fails at the learner's line. A worker that dies (os._exit, a segmentation fault, the
out-of-memory killer) or outruns the time limit inside a C call, where the time limit's signal cannot interrupt it,
fails the test it was running with a message that says what happened and where, and the next test starts a fresh
worker. Ctrl-C is the grading process's: the worker ignores it, so a KeyboardInterrupt in the worker is the learner's.
Workers are started by grader.engine.children, from a server that never touches a GPU: on --device cuda the grading
process does not either, and each worker initialises its own."""

import faulthandler
import linecache
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from . import children
from .calls import timed_out_message
from ..i18n import say

MEMORY_SHARE = 0.75  # of the machine's memory (or the container's), that a worker may take by default
HARD_MARGIN = 10.0  # at most, seconds past a test's time limit (and at most the limit again) before its worker is
# stopped: the limit's own signal comes first
DUMP_WAIT = 1.0  # seconds a stuck worker has to write where it is stuck before it is killed
CLOSE_WAIT = 10.0  # seconds a worker has to finish its last teardown (exercise 17's ranks) at the end of a run
PEAK_EVERY = 0.5  # seconds between two readings of the worker's peak memory
KEPT_OUTPUT = 1 << 16  # bytes of the worker's own error output kept, to say why it could not start
GB = 1 << 30
_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)', re.MULTILINE)
# the faults after which faulthandler writes where the process was
_CRASHES = {getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT")
            if hasattr(signal, name)}
_SIGKILL = getattr(signal, "SIGKILL", None)

_conn = None  # in a worker: its connection to the grading process
_state = None  # in a worker: the _State it shares with the grading process


def in_worker() -> bool:
    return _conn is not None


def prepare() -> None:
    """Start the server that forks workers, which imports torch and the grader meanwhile."""
    children.context()


def tell(*message) -> None:
    """In a worker, tell the grading process (a function that ran past the time limit, a note); elsewhere nothing."""
    if _conn is not None:
        _conn.send(message)


def running(function: tuple[str, str] | None = None, case: str | None = None) -> None:
    """In a worker, note what the learner's code runs now, (module, function) or a golden case's label, where the
    grading process reads it if the worker dies or is stuck; elsewhere nothing. (Shared memory: no message, no wait.)"""
    if _state is not None:
        _state.note(function, case)


class _State:
    """What the grading process and its worker share without messages: the phase of the test the worker runs, since
    when, and what the learner's code runs."""

    SIZE = 1024

    def __init__(self, ctx):
        self.phase = ctx.RawValue("i", -1)  # 0 setup, 1 call, 2 teardown
        self.since = ctx.RawValue("d", 0.0)  # time.monotonic() when the phase began (the clock is the machine's)
        self.trail = ctx.RawArray("c", self.SIZE)  # "module\x1ffunction\x1fcase"

    def begin(self, phase: int) -> None:
        self.phase.value, self.since.value = phase, time.monotonic()
        if phase == 0:
            self.trail.value = b""

    def note(self, function: tuple[str, str] | None, case: str | None) -> None:
        module, name, label = (self.trail.value.decode(errors="replace").split("\x1f") + ["", "", ""])[:3]
        if function is not None:
            module, name = function
        if case is not None:
            label = case
        self.trail.value = "\x1f".join([module, name, label]).encode()[:self.SIZE - 1]

    def read(self) -> dict:
        """{"function": (module, name), "case": label}, with what is known."""
        module, name, label = (self.trail.value.decode(errors="replace").split("\x1f") + ["", "", ""])[:3]
        return {**({"function": (module, name)} if name else {}), **({"case": label} if label else {})}


def note(text: str) -> None:
    """A line for the person waiting (e.g. that ranks wait in a collective): in a worker, the grading process shows it;
    elsewhere it goes to stderr."""
    if _conn is not None:
        _conn.send(("note", text))
    else:
        print(text, file=sys.stderr, flush=True)


def machine_memory() -> int | None:
    """Bytes of memory of the machine, or of the container when its limit is lower (cgroup v2 or v1)."""
    try:
        found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            found = min(found, int(text))
    return found


def memory_limit(gb: float | None, mapped: int = 0) -> int | None:
    """Bytes of address space a worker may take: gb (0: no limit), else MEMORY_SHARE of the machine's memory; plus
    mapped, the size of checkpoint files that are memory-mapped (they take address space, not memory)."""
    if gb is not None:
        return int(gb * GB) + mapped if gb > 0 else None
    machine = machine_memory()
    return int(machine * MEMORY_SHARE) + mapped if machine else None


def gigabytes(n: int) -> str:
    return f"{n / GB:.1f}"


def _limit(memory: int | None) -> str:
    return say("sandbox.limit", gb=gigabytes(memory)) if memory else say("sandbox.no_limit")


def out_of_memory(error: BaseException | None, who: str) -> str | None:
    """What a failure says first when error is an allocation that failed for want of memory (under the worker's
    limit: MemoryError, or torch's RuntimeError that names the bytes asked for); None for any other error."""
    asked = re.search(r"tried to allocate (\d+) bytes", str(error)) if isinstance(error, RuntimeError) else None
    if not isinstance(error, MemoryError) and asked is None:
        return None
    try:
        import resource
        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, ValueError, OSError):
        cap = -1
    limit = _limit(cap if cap > 0 else None)
    if asked is None:
        return say("sandbox.out_of_memory", who=who, limit=limit)
    return say("sandbox.asked_for", who=who, gb=gigabytes(int(asked[1])), limit=limit)


class Sandbox:
    """The grading process's side: one worker at a time, to which each graded test is handed."""

    def __init__(self, config, memory: int | None, show):
        self.config, self.memory, self.show = config, memory, show
        self.timed_out = config.llama3_timed_out  # shared with every worker: a function that timed out stays so
        self.broken: str | None = None  # why a worker could not start: every later test fails with it at once
        self.worker = None

    def start(self) -> None:
        """Start a worker; it is forked once the server has imported torch and the grader, while this process goes
        on (collecting the tests): run() waits for it."""
        ctx = children.context()
        self.conn, conn = ctx.Pipe()
        self.errors, errors = ctx.Pipe(duplex=False)
        self.state = _State(ctx)
        params = self.config.invocation_params
        self.worker = ctx.Process(target=_work, name="llama3-kit grading",
                                  args=(conn, errors, self.state, list(map(str, params.args)), str(params.dir),
                                        dict(os.environ), self.memory, dict(self.timed_out)))
        self.output, self.peak, self.ready = bytearray(), 0, False
        self._starting = threading.Thread(target=self._fork, args=(conn, errors), name="llama3-kit worker start")
        self._starting.start()

    def _fork(self, conn, errors) -> None:
        try:
            self.worker.start()
        except BaseException as e:  # reported by run, in the grading process's thread
            self.broken = say("sandbox.could_not_start", detail=f"{type(e).__name__}: {e}")
        finally:
            conn.close()
            errors.close()

    def run(self, item, nextitem, limit: float) -> list:
        """item's reports (setup, call, teardown), run by the worker; a worker that dies or outruns limit fails it."""
        if self.worker is None and not self.broken:
            self.start()
        self._starting.join()
        if self.broken:
            return [failed(item, "setup", self.broken)]
        try:
            try:
                self.conn.send((item.nodeid, nextitem.nodeid if nextitem is not None else None))
            except OSError:  # it ended between two tests
                return [self._died(item)]
            return self._follow(item, limit)
        except BaseException:
            self.kill()  # Ctrl-C, or the grader's own fault: no worker is left running
            raise

    def _follow(self, item, limit: float) -> list:
        """Wait for the worker's reports of item; the worker wakes this process only when it is done (or has a
        time-out or a note to tell), and a reading every PEAK_EVERY seconds watches its time and memory."""
        started = time.monotonic()
        while True:
            now = time.monotonic()
            self.peak = max(self.peak, _peak(self.worker.pid))
            began = max(started, self.state.since.value)  # the phase's: each has its own time limit
            left = began + limit + min(limit, HARD_MARGIN) - now if limit > 0 else PEAK_EVERY
            if left <= 0:
                return [self._stop(item, limit)]
            ready = multiprocessing.connection.wait([self.conn, self.errors, self.worker.sentinel],
                                                    min(left, PEAK_EVERY))
            if self.errors in ready:
                self._read_output()
            if self.conn in ready:
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    return [self._died(item)]
                kind = message[0]
                self.ready = True
                if kind == "done":
                    return [self.config.hook.pytest_report_from_serializable(config=self.config, data=data)
                            for data in message[1]]
                if kind == "timed_out":
                    self.timed_out[message[1]] = message[2]
                elif kind == "note":
                    self.show(message[1])
                elif kind == "missing":
                    return [failed(item, "setup", say("sandbox.not_collected", test=item.nodeid))]
            elif self.worker.sentinel in ready and not self.conn.poll():
                return [self._died(item)]

    def _read_output(self) -> None:
        try:
            self.output += os.read(self.errors.fileno(), 1 << 16)
        except OSError:
            return
        del self.output[:-KEPT_OUTPUT]

    def _ended(self) -> tuple[int | None, str]:
        """The worker's exit code and the output it left; it is forgotten, and the next test starts a fresh one."""
        self.worker.join(DUMP_WAIT)
        if self.worker.is_alive():
            self.worker.kill()
            self.worker.join()
        while self.errors.poll(0):
            before = len(self.output)
            self._read_output()
            if len(self.output) == before:
                break
        code, output = self.worker.exitcode, self.output.decode(errors="replace")
        self.conn.close()
        self.errors.close()
        self.worker = None
        return code, output

    def _died(self, item):
        phase, trail = self._phase(), self.state.read()
        code, output = self._ended()
        what = _what(trail, item)
        if not self.ready:
            self.broken = say("sandbox.could_not_start", detail=_last_line(output) or f"exit code {code}")
            return failed(item, "setup", self.broken)
        if code is not None and code < 0 and -code == _SIGKILL:
            held = say("sandbox.held", gb=gigabytes(self.peak)) if self.peak else ""
            message = say("sandbox.killed", what=what, held=held, limit=_limit(self.memory))
        elif code is not None and code < 0 and -code in _CRASHES:
            crash = say("sandbox.segfault") if -code == signal.SIGSEGV else signal.Signals(-code).name
            message = say("sandbox.crashed", crash=crash, what=what) + _where(output)
        elif code is not None and code < 0:
            message = say("sandbox.signal", what=what, signal=signal.Signals(-code).name) + _where(output)
        else:
            message = say("sandbox.exited", what=what, code=code)
        return failed(item, phase, message)

    def _stop(self, item, limit: float):
        """The worker outran the time limit where its signal could not stop it: it says where, then it is killed; the
        function it was running fails at once in its later tests, as after any time-out."""
        phase, trail = self._phase(), self.state.read()
        mark = len(self.output)
        if hasattr(signal, "SIGUSR1"):
            os.kill(self.worker.pid, signal.SIGUSR1)  # faulthandler writes where each thread is
            deadline = time.monotonic() + DUMP_WAIT
            while time.monotonic() < deadline and self.errors.poll(deadline - time.monotonic()):
                self._read_output()
                if b"most recent call first" in self.output[mark:]:
                    time.sleep(0.1)  # the other threads' too
        self.worker.kill()
        self._ended()
        output = self.output[mark:].decode(errors="replace")
        if "function" in trail:
            module, name = trail["function"]
            self.timed_out.setdefault((module, name), timed_out_message(name, item.name))
        where = _where(output)
        if phase != "call":  # the time limit's signal covers the call only
            return failed(item, phase, say("plugin.time_limit", limit=f"{limit:g}") + where)
        return failed(item, phase, say("sandbox.c_call", what=_what(trail, item), limit=f"{limit:g}") + where)

    def _phase(self) -> str:
        """The phase of its test the worker is in."""
        return ("setup", "call", "teardown")[self.state.phase.value] if self.state.phase.value >= 0 else "setup"

    def _started(self) -> bool:
        """Whether a worker runs (or ran): once its start, in a thread, is over; a worker that never started is
        forgotten."""
        if self.worker is None:
            return False
        self._starting.join()
        if self.worker.pid is None:
            self.worker = None
        return self.worker is not None

    def kill(self) -> None:
        if self._started():
            self.worker.kill()
            self._ended()

    def close(self) -> None:
        """Let the worker finish its last teardown and end; kill it if it does not."""
        if not self._started():
            return
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.worker.join(CLOSE_WAIT)
        self.kill()


def failed(item, when: str, message: str):
    """A failed report of item's phase when, with message and the status the scoreboard reads."""
    now = time.time()
    return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed", message, when,
                             [], 0.0, now, now, user_properties=[("status", "failing"), ("mistake", None)])


def _what(trail: dict, item) -> str:
    """What was running: the golden case, else the function of the learner's, else the test."""
    if "case" in trail:
        return trail["case"]
    return trail["function"][1] if "function" in trail else item.name


def _where(output: str) -> str:
    """The learner's innermost frame in the last faulthandler dump in output ('at exercises/ex04_rms_norm.py:7 in
    rms_norm' and its line), or its innermost frame in solutions/; "" if there is none."""
    dump = output[output.rfind("Fatal Python error"):] if "Fatal Python error" in output else output
    frames = [(Path(file), int(line), fn) for file, line, fn in _FRAME.findall(dump)]  # innermost first
    mine = [f for f in frames if f[0].parent.name == "exercises" and not f[0].name.startswith("test_")]
    mine = mine or [f for f in frames if f[0].parent.name == "solutions"]
    if not mine:
        return ""
    path, line, fn = mine[0]
    source = linecache.getline(str(path), line).strip()
    return f"\n  at {path.parent.name}/{path.name}:{line} in {fn}" + (f"\n    {source}" if source else "")


def _last_line(output: str) -> str:
    """The last line of output that names an error, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return next((line for line in reversed(lines) if "rror" in line), lines[-1] if lines else "")


def _peak(pid: int) -> int:
    """The most memory process pid has held (Linux's VmHWM), in bytes; 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _TimedOut(dict):
    """A worker's functions that ran past the time limit: each new one is told to the grading process too, so that a
    fresh worker knows it."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        tell("timed_out", key, value)


class _Worker:
    """The worker's pytest plugin: run the tests the grading process names, and send it their reports."""

    def __init__(self, conn, state: _State, timed_out: dict):
        self.conn, self.state, self.timed_out = conn, state, timed_out
        self.reports: list = []

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        self.config = config
        config.llama3_timed_out = _TimedOut(self.timed_out)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        items = {item.nodeid: item for item in session.items}
        tell("ready")
        while (job := self.conn.recv()) is not None:
            nodeid, following = job
            item = items.get(nodeid)
            if item is None:
                tell("missing")
                continue
            item.ihook.pytest_runtest_protocol(item=item, nextitem=items.get(following))
            for name in ("last_type", "last_value", "last_traceback", "last_exc"):  # a failure's frames and tensors
                if hasattr(sys, name):
                    setattr(sys, name, None)
            self.state.phase.value = -1
            tell("done", self.reports)
            self.reports = []
        os._exit(0)  # the grading process writes the results; nothing is left to do here

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.state.begin(0)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        self.state.begin(1)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item):
        self.state.begin(2)

    def pytest_runtest_logreport(self, report):
        self.reports.append(self.config.hook.pytest_report_to_serializable(config=self.config, report=report))


def _work(conn, errors, state: _State, args: list[str], folder: str, env: dict, memory: int | None,
          timed_out: dict) -> None:
    """The worker: pytest on args in folder, with the grading process's environment, its memory capped, its own
    output going nowhere and any crash's traceback to errors; then it runs the tests it is sent."""
    global _conn, _state
    children.started()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(folder)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _more_likely_killed_for_memory()
    if memory:
        _cap(memory)
    fd = errors.fileno()
    os.dup2(fd, 2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    faulthandler.enable(file=fd)
    if hasattr(faulthandler, "register") and hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=fd)  # every thread: the signal may land on any of them
    _conn, _state = conn, state
    pytest.main(args, plugins=[_Worker(conn, state, timed_out)])


def _cap(memory: int) -> None:
    """RLIMIT_AS: an allocation beyond memory bytes of address space fails (MemoryError, or torch's RuntimeError)."""
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ImportError, ValueError, OSError):
        pass  # not on this system (Windows); macOS does not enforce it


def _more_likely_killed_for_memory() -> None:
    """When the machine runs out of memory, Linux's out-of-memory killer picks this process before the others."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass
