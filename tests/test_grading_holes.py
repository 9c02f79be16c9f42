"""Wrong programs a learner writes that are none of the named mistakes' variants (tests/plants/<module>/wrong/): each
fails in its own exercise (and only there), with a message that says what went wrong. Every other exercise holds the
reference."""

import pytest

import plants
from learners import by_exercise, grade_all, tree

WRONG = plants.wrong()
ROUNDS = plants.rounds(WRONG.values())


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, list[dict]]:
    """name -> the graded results of that wrong program's exercise (every round graded in one subprocess)."""
    jobs = []
    for i, round_ in enumerate(ROUNDS):
        planted = plants.planted(round_)
        jobs.append((tree(tmp_path_factory.mktemp(f"round{i}"), planted),
                     ("--impl", "exercises", "-k", " or ".join(planted))))
    results = {}
    for round_, found in zip(ROUNDS, grade_all(jobs)):
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
