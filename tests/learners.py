"""Learner trees for the kit's own tests: the pristine stubs and the kit's graded tests in a temporary folder, with
chosen modules replaced, graded in a subprocess exactly as a learner's `pytest exercises/` would be. Nothing is taken
from the learner's own exercises/: the stubs come from grader/learner/stubs.zip."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from grader.learner import curriculum, pristine
from grader.paths import ROOT

SOLUTIONS = ROOT / "solutions"
MODULES = sorted(p.stem for p in SOLUTIONS.glob("ex*.py"))
# The files of exercises/ that the kit ships and a learner does not edit: the package, the graded tests, the chapters
# in Chinese. (The stubs beside them are the learner's; their pristine text is in stubs.zip.)
KIT_EXERCISES = ROOT / "exercises"
Command = tuple[list[str], Path, dict]  # argv, the folder it runs in, its whole environment


def kit_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.name == "__init__.py" or p.name.endswith(".zh.md")
                  or (p.name.startswith("test_ex") and p.suffix == ".py"))


@contextmanager
def exercises_from(root: Path):
    """Within the block, `import exercises` in this process (the CLI's --impl exercises) is root's exercises/, not the
    learner's: the modules imported before are set aside, and put back afterwards."""
    def ours() -> list[str]:
        return [name for name in sys.modules if name == "exercises" or name.startswith("exercises.")]

    saved, path = {name: sys.modules.pop(name) for name in ours()}, list(sys.path)
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        for name in ours():
            del sys.modules[name]  # root's modules go with it
        sys.modules.update(saved)
        sys.path[:] = path


def tree(tmp_path: Path, planted: dict[str, str] | None = None) -> Path:
    """tmp_path/kit/exercises: the pristine stubs and the kit's graded tests, with planted[module] = source replacing
    some. Whatever the learner has written in exercises/ stays out."""
    root = tmp_path / "kit"
    folder = root / "exercises"
    folder.mkdir(parents=True)
    for path in kit_files(KIT_EXERCISES):
        shutil.copyfile(path, folder / path.name)
    for e in curriculum.exercises():
        (folder / e.stub).write_bytes(pristine.read(e.stub))
    for module, source in (planted or {}).items():
        (root / "exercises" / f"{module}.py").write_text(source)
    return root


def solution(module: str) -> str:
    return (SOLUTIONS / f"{module}.py").read_text()


def with_override(module: str, names: dict[str, str], imports: tuple[str, ...] = ()) -> str:
    """The reference module, with names rebound at the end: names[name] = an expression (which may use imports)."""
    lines = [f"import {i}  # noqa: E402" for i in imports] + [f"{name} = {expr}" for name, expr in names.items()]
    return solution(module) + "\n\n# planted by the kit's tests\n" + "\n".join(lines) + "\n"


def with_mistakes(mistakes) -> dict[str, str]:
    """module -> the reference module with these named mistakes' variants in place of their functions. Each variant
    is found by its own module and name, wherever the grader keeps it."""
    names: dict[str, dict[str, str]] = {}
    imports: dict[str, set[str]] = {}
    for m in mistakes:
        names.setdefault(m.module, {})[m.function] = f"{m.variant.__module__}.{m.variant.__name__}"
        imports.setdefault(m.module, set()).add(m.variant.__module__)
    return {module: with_override(module, overrides, tuple(sorted(imports[module])))
            for module, overrides in names.items()}


def spoiled(module: str, kind: str) -> str:
    """The reference module with every function and class replaced by a bad learner of this kind (see
    bad_learners.py)."""
    return solution(module) + f"\n\nimport bad_learners  # noqa: E402\nbad_learners.spoil(globals(), {kind!r})\n"


def graded_files(root: Path, modules) -> tuple[str, ...]:
    """The graded test files of these exercises in the tree, as arguments of a grading: grading them alone spares the
    collection of every other file, by the grading process and again by its worker."""
    return tuple(str(root / "exercises" / f"test_{module}.py") for module in modules)


def naming_tests(root: Path, mistakes, beside=()) -> tuple[str, ...]:
    """The graded test of each mistake's function in the tree, and the (module, test) pairs beside, as arguments of
    a grading: the tests that must name the mistakes, without the rest of their exercises' tests."""
    tests = [(m.module, graded_test_name(m.function)) for m in mistakes] + list(beside)
    return tuple(f"{root}/exercises/test_{module}.py::{name}" for module, name in dict.fromkeys(tests))


def grade(root: Path, *args: str, env: dict[str, str] | None = None) -> list[dict]:
    """Grade the tree like a learner's pytest run; one dict per graded test (nodeid, exercise, outcome, status,
    message)."""
    return grade_all([(root, args)], env)[0]


def grade_all(jobs: list[tuple[Path, tuple[str, ...]]], env: dict[str, str] | None = None) -> list[list[dict]]:
    """Grade several trees, each with its pytest arguments (its exercises/ unless they name files in it, see
    graded_files), in one subprocess: one pytest run per tree, in turn, as the scoreboard runs them in-process (the
    exercises of one tree are unimported before the next), sparing a start-up of Python, torch and pytest per tree.
    One list of results per job, in order."""
    return Grading(jobs, env).results(range(len(jobs)))


class Grading:
    """grade_all's subprocess, started at once and read as it goes (by a thread): results() waits only for the jobs
    it asks for, so that a grading started early (early_gradings below) runs beside the tests meanwhile, at a lower
    priority (nice) if asked."""

    TIMEOUT = 1800

    def __init__(self, jobs: list[tuple[Path, tuple[str, ...]]], env: dict[str, str] | None = None, nice: int = 0):
        argv, cwd, environment = grading_command(jobs, env, nice)
        self.errors = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                        env=environment)
        self.found: list[list[dict]] = [[] for _ in jobs]
        self.done: set[int] = set()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True, name="grading reader").start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                record = json.loads(line)
                with self.changed:
                    if "done" in record:
                        self.done.add(record["done"])
                    else:
                        self.found[record.pop("job")].append(record)
                    self.changed.notify_all()
        self.process.wait()
        with self.changed:
            self.changed.notify_all()

    def results(self, jobs: range) -> list[list[dict]]:
        """The results of these jobs, once each is graded; an AssertionError if the subprocess crashed first."""
        with self.changed:
            finished = self.changed.wait_for(lambda: set(jobs) <= self.done or self.process.poll() is not None,
                                             timeout=self.TIMEOUT)
            if not set(jobs) <= self.done:
                self.stop()
                self.errors.seek(0)
                why = f"exit code {self.process.returncode}" if finished else f"over {self.TIMEOUT} s"
                raise AssertionError(f"grading crashed ({why}):\n{self.errors.read()[-3000:]}")
            return [self.found[job] for job in jobs]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def grading_command(jobs: list[tuple[Path, tuple[str, ...]]], env: dict[str, str] | None = None,
                    nice: int = 0) -> Command:
    """The subprocess of grade_all, as a command, its niceness raised by nice; its results: graded_in(its stdout,
    len(jobs))."""
    spec = json.dumps([[str(root), list(args)] for root, args in jobs])
    return ([sys.executable, __file__, spec, str(nice)], jobs[0][0],
            {**_env(jobs[0][0]), "PYTHONPATH": str(Path(__file__).parent), **(env or {})})


def graded_in(stdout: str, jobs: int) -> list[list[dict]]:
    """The results per job that a grading_command printed."""
    found: list[list[dict]] = [[] for _ in range(jobs)]
    for line in stdout.splitlines():
        if line.startswith("{") and "done" not in (record := json.loads(line)):
            found[record.pop("job")].append(record)
    return found


_EARLY: dict[str, tuple[Grading, range]] = {}  # test module name -> the grading of its jobs, and which they are


EARLY_PROCESSES = 2  # one per core: the session's own tests share them
# The early gradings yield the cores to the session's own tests (and the commands they read), whose results are read
# last (tests/conftest.py): the session's tests run nearly as fast as alone while the gradings take what is left,
# and neither waits with a core idle. The faulty trees' time limits (5 and 8 s, each doubled before a stuck worker is
# killed) leave room for a worker slowed this way: in a full run, the slowest of 71 workers was ready after 3.6 s.
EARLY_NICE = 5


def start_early(modules, items, tmp_path_factory) -> list[Grading]:
    """Start grading the trees of each test module that has trees_to_grade(items, tmp_path_factory) (the jobs its
    selected items need), in EARLY_PROCESSES subprocesses, each module's trees in one, the modules spread so that each
    subprocess has about as many trees: tests/conftest.py does it as the session starts."""
    planned = {module.__name__: module.trees_to_grade([item for item in items
                                                       if getattr(item, "module", None) is module], tmp_path_factory)
               for module in modules}
    bins: list[list[str]] = [[] for _ in range(EARLY_PROCESSES)]
    for name, jobs in planned.items():
        if jobs:
            min(bins, key=lambda b: sum(len(planned[n]) for n in b)).append(name)
    gradings = []
    for names in filter(None, bins):
        grading, start = Grading([job for name in names for job in planned[name]], nice=EARLY_NICE), 0
        for name in names:
            _EARLY[name] = (grading, range(start, start + len(planned[name])))
            start += len(planned[name])
        gradings.append(grading)
    _EARLY.update({name: (None, range(0)) for name, jobs in planned.items() if not jobs})
    _GRADINGS.extend(gradings)
    return gradings


_GRADINGS: list[Grading] = []  # every grading start_early started


def grading_beside() -> bool:
    """Whether a grading start_early started still runs."""
    return any(grading.process.poll() is None for grading in _GRADINGS)


def beside() -> bool:
    """Whether a grading or a command started beside the session still runs."""
    return grading_beside() or any(commands.running() for commands in _COMMANDS)


def early(module, request, tmp_path_factory) -> list[list[dict]]:
    """The results of module.trees_to_grade for the session's selected items: graded since the session started, or
    now."""
    if module.__name__ not in _EARLY:
        start_early([module], request.session.items, tmp_path_factory)
    grading, which = _EARLY.pop(module.__name__)
    return grading.results(which) if grading is not None else []


class Ran(subprocess.CompletedProcess):
    """A command's CompletedProcess, with the folder and environment it ran in and when it started (time.time(): the
    commands before it had ended)."""

    def __init__(self, command: Command, returncode: int, stdout: str, stderr: str, started: float):
        super().__init__(command[0], returncode, stdout, stderr)
        self.cwd, self.env, self.started = command[1], command[2], started


class Commands:
    """Commands that tests read, run one after another by a thread from the session's start, so that their
    subprocesses use the core the session's own tests leave: a test takes its command's CompletedProcess, waiting if
    need be (a Ran). Trees and environments are made before, in the session's thread (a test's monkeypatch must not
    reach them)."""

    def __init__(self, planned: dict[tuple[str, str], Command]):
        self.planned, self.done, self.changed = planned, {}, threading.Condition()
        self.process: subprocess.Popen | None = None
        self.stopped = False
        threading.Thread(target=self._run, daemon=True, name="early commands").start()

    def _run(self) -> None:
        for key, command in self.planned.items():
            argv, cwd, env = command
            with self.changed:
                if self.stopped:
                    return
                started = time.time()
                try:
                    self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True)
                except OSError as e:
                    self.done[key] = e
                    self.changed.notify_all()
                    continue
            try:
                stdout, stderr = self.process.communicate(timeout=600)
                out = Ran(command, self.process.returncode, stdout, stderr, started)
            except subprocess.TimeoutExpired as e:
                self.process.kill()
                self.process.communicate()
                out = e  # the test that reads it fails with it
            with self.changed:
                self.done[key] = out
                self.changed.notify_all()

    def running(self) -> bool:
        with self.changed:
            return not self.stopped and len(self.done) < len(self.planned)

    def stop(self) -> None:
        """At the session's end: the command running is killed, and no other starts."""
        with self.changed:
            self.stopped = True
            if self.process is not None and self.process.poll() is None:
                self.process.kill()

    def result(self, key: tuple[str, str]) -> Ran:
        with self.changed:
            self.changed.wait_for(lambda: key in self.done)
        if isinstance(self.done[key], Exception):
            raise self.done[key]
        return self.done[key]


_COMMANDS: list[Commands] = []


def start_commands(modules, items, tmp_path_factory) -> Commands | None:
    """Run the commands of each test module that has commands_to_run(items, tmp_path_factory) (by test name: the
    commands its selected items read), one after another, beside the session: tests/conftest.py does it as the session
    starts."""
    planned = {(module.__name__, name): command for module in modules
               for name, command in module.commands_to_run([item for item in items
                                                            if getattr(item, "module", None) is module],
                                                           tmp_path_factory).items()}
    if not planned:
        return None
    _COMMANDS.append(Commands(planned))
    return _COMMANDS[-1]


def ran(module, name: str, request, tmp_path_factory) -> Ran:
    """What the command module.commands_to_run planned under name gave: run since the session started, or now."""
    key = (module.__name__, name)
    found = (next((c for c in _COMMANDS if key in c.planned), None)
             or start_commands([module], request.session.items, tmp_path_factory))
    if found is None or key not in found.planned:
        raise KeyError(f"{module.__name__}.commands_to_run planned no command {name!r} for the selected tests")
    return found.result(key)


def _grade_jobs(spec: str, nice: int) -> int:
    """The subprocess of grade_all: pytest exit codes other than 0 and 1 (a crash) end it with that code."""
    from dataclasses import asdict

    from grader.engine import results

    os.nice(nice)
    for job, (root, args) in enumerate(json.loads(spec)):
        sys.path.insert(0, root)
        folder = [] if any(a.startswith(f"{root}/") for a in args) else [f"{root}/exercises"]
        try:
            code, found = results.run([*folder, "-p", "grader.engine.plugin", "--rootdir", root, *args])
        finally:
            sys.path.remove(root)
        if code not in (0, 1):
            print(f"pytest exit code {code} grading {root} {' '.join(args)}", file=sys.stderr)
            return code
        for r in found:
            print(json.dumps({"job": job, **asdict(r)}, ensure_ascii=False), flush=True)
        print(json.dumps({"done": job}), flush=True)
    return 0


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`pytest ARGS` as a learner types it in the tree's folder: its exit code and what it prints."""
    argv, cwd, env = pytest_command(root, *args)
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def pytest_command(root: Path, *args: str) -> Command:
    """pytest_in's command, to run later (Commands)."""
    return ([sys.executable, "-m", "pytest", "-p", "grader.engine.plugin", "-p", "no:cacheprovider", *args], root,
            {**_env(root), "PYTHONPATH": str(root)})


def _env(root: Path) -> dict:
    """The environment without the choices of the person running the tests: no checkpoint, impl or language, and an
    empty kit cache beside the tree (a trained model they fetched into theirs is not graded; test_trained does that)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LLAMA3_CHECKPOINT", "LLAMA3_KIT_IMPL", "LLAMA3_KIT_LANG")}
    return {**clean, "LLAMA3_KIT_CACHE": str(root.parent / "kit-cache")}


def graded_test_name(function: str) -> str:
    """The graded test of a function: KVCache -> test_kv_cache."""
    return "test_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", function).lower()


def by_exercise(results: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for r in results:
        grouped.setdefault(r["exercise"], []).append(r)
    return grouped


def rounds(items, key) -> list[list]:
    """items grouped, in order, so that no two in a group share key(item): what can be planted in one tree."""
    out: list[list] = []
    for item in items:
        target = next((r for r in out if all(key(other) != key(item) for other in r)), None)
        if target is None:
            out.append(target := [])
        target.append(item)
    return out


if __name__ == "__main__":
    sys.exit(_grade_jobs(sys.argv[1], int(sys.argv[2])))
