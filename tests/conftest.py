"""Fixtures the kit's test files share; pytest finds them here, no import needed."""

from pathlib import Path

import pytest

import learners
from cli_kit import UNSET, kit
from learners import exercises_from


@pytest.fixture(scope="session", autouse=True)
def early_gradings(request, tmp_path_factory):
    """The long gradings of the test modules that define trees_to_grade (test_grading.py and others), and the commands
    of those that define commands_to_run, start with the session, in subprocesses beside it: on two cores they run
    while the tests before them do."""
    import torch

    items = request.session.items

    def having(name: str) -> list:
        return list(dict.fromkeys(item.module for item in items if hasattr(getattr(item, "module", None), name)))

    gradings = learners.start_early(having("trees_to_grade"), items, tmp_path_factory)
    commands = learners.start_commands(having("commands_to_run"), items, tmp_path_factory)
    threads = torch.get_num_threads()
    if gradings:
        torch.set_num_threads(1)  # threads waiting for each other would slow every process
        _THREADS_AFTER.append(threads)
    yield
    torch.set_num_threads(threads)
    for grading in gradings:
        grading.stop()
    if commands is not None:
        commands.stop()


def pytest_collection_modifyitems(items):
    """The tests that read what the early gradings and commands give (fixtures graded and ran) run last, in their
    order: the others run first, at the priority the early gradings yield them (learners.EARLY_NICE), so that no test
    waits for a result while a core idles."""
    def reads(item) -> bool:
        return bool({"graded", "ran"} & set(getattr(item, "fixturenames", ())))

    items[:] = [item for item in items if not reads(item)] + [item for item in items if reads(item)]


_THREADS_AFTER: list[int] = []  # the threads this process gets back once the early gradings have all ended


def pytest_runtest_setup(item):
    """Between two tests, once the early gradings have ended: this process takes back its threads."""
    if _THREADS_AFTER and not learners.grading_beside():
        import torch

        torch.set_num_threads(_THREADS_AFTER.pop())


@pytest.fixture
def ran(request, tmp_path_factory):
    """ran(name): what the command that the test module's commands_to_run planned under name gave (a learners.Ran),
    run beside the session since it started."""
    return lambda name: learners.ran(request.module, name, request, tmp_path_factory)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No checkpoint or RoPE override from the environment; the kit's cache in tmp_path."""
    for name in ("LLAMA3_CHECKPOINT", "LLAMA3_ROPE_SCALE_FACTOR", "LLAMA3_KIT_IMPL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA3_KIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A pristine kit folder that in-process CLI calls use (cli_kit.call), its exercises/ the one --impl exercises
    imports."""
    folder = kit(tmp_path)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA3_KIT_ROOT", str(folder))
    monkeypatch.setenv("LLAMA3_KIT_CACHE", str(tmp_path / "kit-cache"))
    with exercises_from(folder):
        yield folder


@pytest.fixture
def one_thread():
    """One torch thread for the test while gradings or commands run beside the session: on the busy 2-core machine,
    waiting threads made test_trained_reference.py 8 times slower (230 s against 29 s). Once they have ended, the
    test has the machine, and every thread."""
    import torch

    before = torch.get_num_threads()
    if learners.beside():
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
