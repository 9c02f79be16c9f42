"""The programs the kit's tests plant into a learner's tree, one file each:

    tests/plants/<module>/variants/<name>.py   right, but written differently from solutions/<module>.py: it must
                                               pass every graded test, on the tiny models and on the trained one
    tests/plants/<module>/wrong/<name>.py      a mistake a learner makes that none of the named mistakes is: it must
                                               fail in its own exercise, with a message that contains FAILURE_SAYS
    tests/plants/<module>/faults/<name>.py     code that crashes, loops, prints a flood, changes its input or returns
                                               the wrong type: test_grading.py and test_messages.py assert how the
                                               grader reports each

A plant is appended to its exercise's reference module, so it rebinds some of the module's names and the rest stay
the reference's. Each file is also valid Python on its own, which a linter checks: it imports what it uses, and the
names it takes from the reference module it imports from there (`from solutions.<module> import ...`). Appended,
those names are the module's own already, so those imports are left out of the planted text: the planted functions
and classes keep reading the tree's module, as the grader expects of a learner's code.

A wrong program states, in a module-level string FAILURE_SAYS, words its failure message must contain.
The name of the file is the plant's name and its test id.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from learners import graded_files, rounds as by_rounds, solution, tree

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class Plant:
    name: str
    module: str  # "ex04_rms_norm"
    kind: str  # "variants", "wrong" or "faults"
    path: Path

    @property
    def parsed(self) -> ast.Module:
        return ast.parse(self.path.read_text(), str(self.path))

    @property
    def says(self) -> str | None:
        """A wrong program's FAILURE_SAYS; None for the other kinds."""
        for node in self.parsed.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["FAILURE_SAYS"]:
                return ast.literal_eval(node.value)
        return None

    def own_imports(self) -> list[ast.ImportFrom]:
        """The plant's imports from its own reference module: `from solutions.<module> import ...`."""
        return [node for node in self.parsed.body
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == f"solutions.{self.module}"]

    def planted(self) -> str:
        """The reference module with this plant appended; the plant's imports from that module become blank lines."""
        lines = self.path.read_text().splitlines()
        for node in self.own_imports():
            lines[node.lineno - 1:node.end_lineno] = [""] * (node.end_lineno - node.lineno + 1)
        return self._head() + "\n".join(lines) + "\n"

    def _head(self) -> str:
        relative = self.path.relative_to(FOLDER.parent.parent).as_posix()
        return solution(self.module) + f"\n\n# planted by the kit's tests: {relative}\n"

    def line_of(self, text: str) -> int:
        """The number, in the planted module, of the plant's first line that contains text (as a traceback shows it)."""
        start = self._head().count("\n")
        lines = self.path.read_text().splitlines()
        return start + 1 + next(i for i, line in enumerate(lines) if text in line)


def _found(kind: str) -> dict[str, Plant]:
    paths = sorted(FOLDER.glob(f"ex[0-9][0-9]_*/{kind}/*.py"), key=lambda p: (p.parent.parent.name, p.stem))
    plants = {p.stem: Plant(p.stem, p.parent.parent.name, kind, p) for p in paths}
    assert len(plants) == len(paths), f"two {kind} plants share a name: {sorted(p.stem for p in paths)}"
    return plants


def variants() -> dict[str, Plant]:
    """name -> each correct variant, by exercise, then name."""
    return _found("variants")


def wrong() -> dict[str, Plant]:
    """name -> each wrong program, by exercise, then name."""
    return _found("wrong")


def faults() -> dict[str, Plant]:
    """name -> each fault, by exercise, then name."""
    return _found("faults")


def planted(plants) -> dict[str, str]:
    """module -> its reference module with the plant appended (at most one plant per module)."""
    out: dict[str, str] = {}
    for plant in plants:
        assert plant.module not in out, f"two plants of {plant.module} in one tree"
        out[plant.module] = plant.planted()
    return out


def rounds(plants) -> list[list[Plant]]:
    """The plants grouped, in order, so that no two in a round replace the same module: one tree per round."""
    return by_rounds(plants, key=lambda plant: plant.module)


def round_trees(rounds_, mktemp, name: str, *args: str, only: str = "") -> list[tuple[Path, tuple[str, ...]]]:
    """One tree per round of plants, graded on its planted exercises' test files alone (and only the tests matching
    only): the jobs of learners.grade_all. args go to each grading (e.g. --device cuda)."""
    jobs = []
    for round_ in rounds_:
        sources = planted(round_)
        root = tree(mktemp(name), sources)
        selected = ("-k", only) if only else ()
        jobs.append((root, ("--impl", "exercises", *args, *graded_files(root, sources), *selected)))
    return jobs
