"""The grader's child processes (the process that runs the learner's graded code, and exercise 17's ranks): started
from a clean server process, and ended with the process that started them, however that one ends.

multiprocessing's forkserver starts them: a server process, spawned once with torch and the grader imported, forks each
child, so a child starts in a fraction of a second, and never inherits a GPU context or another process's threads.
On Linux the server gets SIGTERM when the process that started it dies, and each child SIGKILL when the server dies
(PR_SET_PDEATHSIG), so a kill -9 of a command ends every process it started; elsewhere a watchdog thread in each
polls its parent. The server removes the folder of its socket as it ends. Where the forkserver would listen on an
abstract socket, which any local user may connect to (Linux Python before 3.10.9, CVE-2022-42919), children are
spawned instead."""

import atexit
import ctypes
import ctypes.util
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.util
import os
import shutil
import signal
import sys
import threading
import time

# imported once by the server: this module first, so that the server ends with its parent from its start. The workers
# of graded tests need torch._dynamo (exercise 18 compiles); the ranks of exercise 17, started from a worker, only what
# a rank imports (the specs hold their jobs), which spares their server most of its start.
PRELOAD = ["grader.engine.children", "torch", "torch.distributed", "torch._dynamo", "pytest", "grader.engine.plugin"]
RANKS_PRELOAD = ["grader.engine.children", "torch", "torch.distributed", "grader.engine.ranks", "grader.specs"]
SERVER = "LLAMA3_KIT_FORKSERVER"  # set only while the server starts: "<its parent's pid>:<the folder of its socket>"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_SECONDS = 0.5  # how often a watchdog (where there is no PR_SET_PDEATHSIG) looks for its parent

_server_pid: int | None = None  # in the server and the children it forks: the server's pid


def context(preload: list[str] = PRELOAD):
    """The multiprocessing context that starts the grader's children, with its server running; preload matters only
    to the process's first call, which starts the server."""
    if "forkserver" not in multiprocessing.get_all_start_methods() or _abstract_socket():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    # a child shares the folder of the process that started it (and the server of that process removes it)
    folder = multiprocessing.util.get_temp_dir() if multiprocessing.parent_process() is None else ""
    os.environ[SERVER] = f"{os.getpid()}:{folder}"
    try:
        multiprocessing.forkserver.ensure_running()  # a no-op once it runs
    finally:
        os.environ.pop(SERVER, None)
    return ctx


def _abstract_socket() -> bool:
    """Whether this Python's forkserver would listen on a Linux abstract socket, which has no permissions."""
    return multiprocessing.connection.arbitrary_address("AF_UNIX").startswith("\0")


def started() -> None:
    """The first thing a child does: end when the process that forked it ends."""
    parent = _server_pid or multiprocessing.parent_process().pid
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's handler is not the child's
    if _on_parent_death(signal.SIGKILL):
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
    else:
        _watch(parent, lambda: os._exit(1))


def _on_parent_death(sig: int) -> bool:
    """Linux: have the kernel send sig to this process when its parent dies. False where there is no such request."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _watch(parent: int, end) -> None:
    """A daemon thread that calls end() once this process's parent is gone (it is re-parented then). It needs the GIL:
    a child stuck inside a C call that holds it ends only once that call returns."""
    def watch():
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        end()

    threading.Thread(target=watch, name="llama3-kit parent watchdog", daemon=True).start()


def _serve() -> None:
    """In the server, which imports this module first: end when the process that started it ends, removing the folder
    of the server's socket (also when it ends on its own, as it does once every process that uses it has ended)."""
    global _server_pid
    starter, _, folder = os.environ.pop(SERVER).partition(":")
    _server_pid = os.getpid()

    def end(*_):
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)  # its children end with it

    if folder:
        atexit.register(shutil.rmtree, folder, True)
    signal.signal(signal.SIGTERM, end)
    if _on_parent_death(signal.SIGTERM):
        if os.getppid() != int(starter):
            end()
    else:
        _watch(int(starter), end)


if os.environ.get(SERVER):
    _serve()
