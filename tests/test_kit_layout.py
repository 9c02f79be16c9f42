"""The kit checks its own layout, as rustlings' `dev check` does: every exercise of the curriculum has all its parts
(stub, Chinese chapter, graded tests, solution, spec with named mistakes, plants), the stubs and the solutions expose
the same functions with the same signatures, and every function a learner implements is documented and raises the one
"not started" error the grader recognises. The stubs are read as shipped (grader/learner/stubs.zip, written from
exercises/ by `python -m grader.learner.pristine`), never from what a learner has written."""

import ast
import importlib
import importlib.util
import inspect
import re

import pytest

import plants
from grader.learner import curriculum, pristine
from grader.paths import ROOT
from learners import exercises_from, tree

EXERCISES = curriculum.exercises()
IDS = [e.module for e in EXERCISES]
SECTIONS = ("Args", "Returns", "Yields", "Hints")
ALL_PLANTS = [*plants.variants().values(), *plants.wrong().values(), *plants.faults().values()]


def _stub(e) -> ast.Module:
    return ast.parse(pristine.read(e.stub), e.stub)


def _implemented(module: ast.Module):
    """(qualname, node) of each function and method whose stub body raises NotImplementedError: what the learner
    writes."""
    def walk(body, prefix=""):
        for node in body:
            if isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n) for n in ast.walk(node)):
                yield prefix + node.name, node
    return list(walk(module.body))


def _public(module) -> dict[str, object]:
    """The functions, classes and constants a module defines itself (not what it imports), by name."""
    return {name: value for name, value in vars(module).items() if not name.startswith("_")
            and not inspect.ismodule(value) and getattr(value, "__module__", module.__name__) == module.__name__}


def _parameters(fn) -> list[tuple]:
    """(name, kind, default) of each parameter: what a caller relies on (annotations name each module's own classes)."""
    return [(p.name, p.kind.name, p.default) for p in inspect.signature(fn).parameters.values()]


def _methods(cls) -> dict[str, list[tuple] | str]:
    """A class's public methods and properties (with __init__ and __call__) by name: parameters, or "property"."""
    out: dict[str, list[tuple] | str] = {"__init__": _parameters(cls)}
    for name, value in vars(cls).items():
        if isinstance(value, property) and not name.startswith("_"):
            out[name] = "property"
        elif inspect.isfunction(value) and (not name.startswith("_") or name == "__call__"):
            out[name] = _parameters(value)
    return out


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> dict[str, object]:
    """module -> the shipped stub, imported from a pristine tree."""
    root = tree(tmp_path_factory.mktemp("layout"))
    with exercises_from(root):
        return {e.module: importlib.import_module(f"exercises.{e.module}") for e in EXERCISES}


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_every_exercise_has_its_stub_chapter_graded_tests_and_solution(e):
    for path in (f"exercises/{e.stub}", f"exercises/{e.module}.zh.md", f"exercises/{e.tests}", f"solutions/{e.stub}"):
        assert (ROOT / path).is_file(), f"exercise {e.id} has no {path}"
    assert pristine.read(e.stub), f"grader/learner/stubs.zip has no {e.stub}"


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_every_exercise_has_a_spec_with_named_mistakes(e):
    """The grader's spec of the exercise, grader/specs/<module>.py, names at least one common mistake."""
    if importlib.util.find_spec("grader.specs") is None:
        pytest.skip("grader/specs/ (one spec module per exercise) is not in this tree yet")
    from grader import specs

    assert (ROOT / "grader" / "specs" / f"{e.module}.py").is_file(), f"exercise {e.id} has no grader/specs/{e.stub}"
    assert e.module in specs.SPECS, f"grader.specs.SPECS has no {e.module}"
    assert specs.SPECS[e.module].mistakes, f"the spec of exercise {e.id} names no mistake"


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_every_exercise_has_a_correct_variant_and_a_wrong_program(e):
    kinds = {plant.kind for plant in ALL_PLANTS if plant.module == e.module} & {"variants", "wrong"}
    assert kinds == {"variants", "wrong"}, (
        f"exercise {e.id} has no {' and no '.join(sorted({'variants', 'wrong'} - kinds))} "
        f"under tests/plants/{e.module}/")


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_stubs_and_solutions_expose_the_same_names_and_signatures(e, stubs):
    """The same functions and classes, with the same parameters (names, kinds, defaults) and the same public methods;
    the stub's constants, with the same values. (A solution may name constants of its own arithmetic, as QMAX.)"""
    stub, reference = _public(stubs[e.module]), _public(importlib.import_module(f"solutions.{e.module}"))
    callables = {name for name, value in stub.items() if callable(value)}
    assert callables == {name for name, value in reference.items() if callable(value)}, (
        f"only in the stub: {sorted(callables - set(reference))}; only in the solution: "
        f"{sorted({n for n, v in reference.items() if callable(v)} - callables)}")
    for name, value in stub.items():
        if inspect.isclass(value):
            assert _methods(value) == _methods(reference[name]), f"{e.stub}: class {name}"
        elif callable(value):
            assert _parameters(value) == _parameters(reference[name]), f"{e.stub}: {name}"
        else:
            assert reference.get(name) == value, f"{e.stub}: the constant {name}"


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_every_function_a_learner_implements_is_documented_and_not_started(e):
    """A docstring with Args, Returns (Yields for a generator; nothing for __init__) and Hints, and one canonical
    raise, the message the grader reads as "not started"."""
    todo = _implemented(_stub(e))
    assert todo, f"{e.stub} asks for nothing"
    problems = []
    for qualname, node in todo:
        doc = ast.get_docstring(node) or ""
        found = {s for s in SECTIONS if re.search(rf"^\s*{s}:\s*$", doc, re.M)}
        result = set() if node.name == "__init__" else {"Yields"} if "Yields" in found else {"Returns"}
        needed = {"Args", "Hints"} | result
        if not needed <= found:
            problems.append(f"the docstring of {qualname} has no {', '.join(sorted(needed - found))}")
        canonical = f"not started: implement {qualname} in exercises/{e.stub} (exercise {e.id})"
        last = node.body[-1]
        if not (isinstance(last, ast.Raise) and isinstance(last.exc, ast.Call)
                and ast.unparse(last.exc.func) == "NotImplementedError" and len(last.exc.args) == 1
                and isinstance(last.exc.args[0], ast.Constant) and last.exc.args[0].value == canonical):
            problems.append(f"{qualname} must end with raise NotImplementedError({canonical!r})")
        elif len(node.body) != 2:
            problems.append(f"{qualname} holds more than its docstring and the raise")
    assert not problems, f"{e.stub}:\n" + "\n".join(problems)


@pytest.mark.parametrize("e", EXERCISES, ids=IDS)
def test_the_model_s_args_are_typed_model_args(e):
    """A parameter named args is exercise 2's ModelArgs, and says so, in the stub and in the solution."""
    untyped = [f"{where}: {node.name}" for where, source in (("stub", pristine.read(e.stub)),
                                                           ("solution", (ROOT / "solutions" / e.stub).read_text()))
               for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)
               for a in node.args.args + node.args.kwonlyargs
               if a.arg == "args" and (a.annotation is None or ast.unparse(a.annotation) != "ModelArgs")]
    assert not untyped, f"{e.stub}: args not typed ModelArgs in " + ", ".join(untyped)


@pytest.mark.parametrize("plant", ALL_PLANTS, ids=[f"{p.kind}/{p.name}" for p in ALL_PLANTS])
def test_every_plant_is_a_documented_program_of_its_exercise(plant):
    """Of an exercise of the curriculum; a docstring saying what it does differently; a wrong program (and only a
    wrong program) states the words its failure says; the names it takes from solutions/ are its own reference
    module's (so appending it leaves them the tree's), and it rebinds at least one public name of that module."""
    assert plant.module in IDS, f"{plant.path}: no exercise {plant.module}"
    module = plant.parsed
    assert ast.get_docstring(module), f"{plant.path} has no docstring"
    says = plant.says
    assert (isinstance(says, str) and says.strip()) if plant.kind == "wrong" else says is None, (
        f"{plant.path}: a wrong program states FAILURE_SAYS (the words of its failure), a variant does not")
    reference = importlib.import_module(f"solutions.{plant.module}")
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("solutions"):
            assert node.module == f"solutions.{plant.module}", (
                f"{plant.path}: import from solutions.{plant.module} only")
            missing = [a.name for a in node.names if not hasattr(reference, a.name)]
            assert not missing, f"{plant.path}: solutions.{plant.module} has no {missing}"
    bound = set()
    for node in module.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound |= {ast.unparse(t).split(".")[0] for t in node.targets}
    public = {name for name in vars(reference) if not name.startswith("_")}
    assert bound & public - {"FAILURE_SAYS"}, f"{plant.path} rebinds no name of solutions/{plant.module}.py"


def test_every_plant_is_a_variant_a_wrong_program_or_a_fault():
    found = {p.relative_to(plants.FOLDER).as_posix() for p in plants.FOLDER.rglob("*.py") if p.name != "__init__.py"}
    known = {plant.path.relative_to(plants.FOLDER).as_posix() for plant in ALL_PLANTS}
    assert found == known, f"not tests/plants/<module>/variants|wrong|faults/<name>.py: {sorted(found - known)}"


FACTS = ROOT / "docs" / "facts.md"


def test_every_citation_of_the_facts_names_a_section_of_docs_facts_md():
    """`docs/facts.md §N` (or `docs/facts.zh.md §N`) in code and docs: section N exists there, in both languages. The
    facts the tests assert ship with the kit."""
    def sections(path):
        return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", path.read_text(encoding="utf-8"), re.M))

    assert sections(FACTS) == sections(FACTS.with_suffix(".zh.md")), (
        "docs/facts.md and docs/facts.zh.md differ in sections")
    cited: dict[str, list[str]] = {}
    for folder in ("exercises", "solutions", "tests", "grader", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md", ".toml"):
                for number in re.findall(r"docs/facts(?:\.zh)?\.md §(\d+(?:\.\d+)?)", path.read_text(encoding="utf-8")):
                    cited.setdefault(number, []).append(path.relative_to(ROOT).as_posix())
    assert cited, "nothing cites docs/facts.md"
    missing = {number: paths for number, paths in cited.items() if number not in sections(FACTS)}
    assert not missing, f"cited, but no such section in docs/facts.md: {missing}"


def test_exercises_solutions_and_tests_cite_the_facts_that_ship():
    """Not the notes the kit was built from (a FACTS.md outside the repository), which a learner does not have."""
    stale = [f"{path.relative_to(ROOT)}:{i}" for folder in ("exercises", "solutions", "tests", "grader")
             for path in sorted((ROOT / folder).rglob("*")) if path.suffix in (".py", ".md", ".toml")
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search("FACTS" + r"( sections?)? \d", line)]
    assert not stale, f"cite docs/facts.md §N instead: {stale}"
