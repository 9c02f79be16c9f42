"""The tolerance table is not too tight: implementations that are right but written differently from solutions/
(tests/variants.py) pass every graded test on the tiny models. (That it is not too loose is test_grading's job:
every known mistake and every bad learner fails. The same variants on the trained model: test_trained.py.)"""

import pytest

from learners import grade_all, tree
from variants import VARIANTS, planted, rounds

ROUNDS = rounds()


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> list[list[dict]]:
    """Every round planted in its own tree, graded in one subprocess."""
    return grade_all([(tree(tmp_path_factory.mktemp("variants"), planted(names)), ("--impl", "exercises", "-k", " or ".join(planted(names))))
                      for names in ROUNDS])


@pytest.mark.parametrize("index", range(len(ROUNDS)), ids=["+".join(names) for names in ROUNDS])
def test_correct_implementations_written_differently_pass_every_graded_test(graded, index):
    plants, results = planted(ROUNDS[index]), graded[index]
    own = [r for r in results if r["exercise"] in plants]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert {r["exercise"] for r in own if r["outcome"] == "passed"} == set(plants)


def test_every_graded_exercise_with_arithmetic_has_a_variant():
    covered = {module[:4] for module, _ in VARIANTS.values()}
    assert covered >= {f"ex{n:02d}" for n in range(3, 18)}, f"no variant of {sorted({f'ex{n:02d}' for n in range(3, 18)} - covered)}"
