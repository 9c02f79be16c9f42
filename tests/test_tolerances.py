"""The tolerance table is not too tight: implementations that are right but written differently from solutions/
(tests/plants/<module>/variants/) pass every graded test on the tiny models. (That it is not too loose is
test_grading's job: every known mistake and every bad learner fails. The same variants on the trained model:
test_trained.py.)"""

import sys

import pytest

import plants
from learners import early

VARIANTS = plants.variants()
ROUNDS = plants.rounds(VARIANTS.values())


def trees_to_grade(items, tmp_path_factory) -> list:
    """Every round planted in its own tree, graded beside the session (tests/conftest.py)."""
    if not any("graded" in item.fixturenames for item in items):
        return []
    return plants.round_trees(ROUNDS, tmp_path_factory.mktemp, "variants")


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory) -> dict[str, list[dict]]:
    """name -> the graded results of that variant's exercise."""
    results = {}
    for round_, found in zip(ROUNDS, early(sys.modules[__name__], request, tmp_path_factory)):
        results |= {plant.name: [r for r in found if r["exercise"] == plant.module] for plant in round_}
    return results


@pytest.mark.parametrize("name", list(VARIANTS))
def test_correct_implementations_written_differently_pass_every_graded_test(graded, name):
    own = graded[name]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert any(r["outcome"] == "passed" for r in own), f"{name}: no graded test of {VARIANTS[name].module} passed"


def test_every_graded_exercise_with_arithmetic_has_a_variant():
    covered = {plant.module[:4] for plant in VARIANTS.values()}
    assert covered >= {f"ex{n:02d}" for n in range(3, 18)}, (
        f"no variant of {sorted({f'ex{n:02d}' for n in range(3, 18)} - covered)}")
