"""Wrong programs a learner writes that are none of the named mistakes' variants (tests/plants/<module>/wrong/): each
fails in its own exercise (and only there), with a message that says what went wrong. Every other exercise holds the
reference."""

import sys

import pytest

import plants
from learners import by_exercise, early

WRONG = plants.wrong()
ROUNDS = plants.rounds(WRONG.values())


def trees_to_grade(items, tmp_path_factory) -> list:
    """Every round planted in its own tree, graded beside the session (tests/conftest.py)."""
    if not any("graded" in item.fixturenames for item in items):
        return []
    return plants.round_trees(ROUNDS, tmp_path_factory.mktemp, "round")


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory) -> dict[str, list[dict]]:
    """name -> the graded results of that wrong program's exercise."""
    results = {}
    for round_, found in zip(ROUNDS, early(sys.modules[__name__], request, tmp_path_factory)):
        results |= {plant.name: by_exercise(found)[plant.module] for plant in round_}
    return results


@pytest.mark.parametrize("name", list(WRONG))
def test_a_wrong_program_fails_in_its_own_exercise_and_says_why(graded, name):
    module, words = WRONG[name].module, WRONG[name].says
    assert words, f"{name}: the plant states no FAILURE_SAYS"
    failed = [r for r in graded[name] if r["outcome"] == "failed"]
    assert failed, f"{name}: every test of {module} passed"
    assert any(words in r["message"] for r in failed), (
        f"{name}: no failure says {words!r}:\n" + "\n\n".join(r["message"] for r in failed))
