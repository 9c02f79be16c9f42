"""The graded tests themselves: the reference passes them all, the untouched stubs fail each as "not started",
every known mistake is named, bad learners fail every test, one solution turns exactly its exercise green,
and a learner's faults each become one clean failure."""

import re

import pytest

from grader.engine import mistakes
from learners import MODULES, by_exercise, grade, solution, spoiled, tree, with_override


@pytest.fixture(scope="module")
def reference_results(tmp_path_factory):
    return grade(tree(tmp_path_factory.mktemp("reference")), "--impl", "solutions")


@pytest.fixture(scope="module")
def stub_results(tmp_path_factory):
    return grade(tree(tmp_path_factory.mktemp("stubs")))


def test_the_reference_passes_every_graded_test(reference_results):
    failed = [r["nodeid"] + "\n" + r["message"] for r in reference_results if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert {r["exercise"] for r in reference_results} == set(MODULES)
    assert sum(r["outcome"] == "passed" for r in reference_results) >= 80


def test_untouched_stubs_fail_every_graded_test_as_not_started(stub_results, reference_results):
    assert len(stub_results) == len(reference_results), "a test was not collected on the stubs"
    graded = [r for r in stub_results if r["outcome"] != "skipped"]
    wrong = [r["nodeid"] + ": " + r["status"] + "\n" + r["message"] for r in graded if r["status"] != "not started"]
    assert not wrong, "\n\n".join(wrong)
    for r in graded:
        assert r["message"].startswith("not started: implement "), r["message"]
        assert f"exercises/{r['exercise']}.py" in r["message"], r["message"]
    skipped = [r for r in stub_results if r["outcome"] == "skipped"]
    assert all(any(why in r["message"] for why in ("chains your earlier exercises", "LLAMA3_CHECKPOINT", "has no golden calls of"))
               for r in skipped)


def test_each_exercise_has_at_least_three_graded_tests(reference_results):
    for module, results in by_exercise(reference_results).items():
        functions = {r["nodeid"].split("::")[1].split("[")[0] for r in results if r["outcome"] == "passed"}
        assert len(functions) >= 3, (module, functions)


def _rounds() -> list[list[mistakes.Mistake]]:
    """Mistakes grouped so that no two in a round replace the same function."""
    rounds: list[list[mistakes.Mistake]] = []
    for m in mistakes.MISTAKES:
        target = next((r for r in rounds if all((x.module, x.function) != (m.module, m.function) for x in r)), None)
        if target is None:
            rounds.append(target := [])
        target.append(m)
    return rounds


@pytest.mark.parametrize("round_", _rounds(), ids=lambda r: "+".join(m.id for m in r))
def test_every_known_mistake_is_named(tmp_path, round_):
    planted: dict[str, dict[str, str]] = {}
    for m in round_:
        planted.setdefault(m.module, {})[m.function] = f"grader.engine.mistakes.{m.variant.__name__}"
    results = grade(tree(tmp_path, {module: with_override(module, names) for module, names in planted.items()}))
    for m in round_:
        test_name = "test_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", m.function).lower()  # KVCache -> test_kv_cache
        golden_tests = [r for r in results if f"::{test_name}[" in r["nodeid"]]
        named = [r for r in golden_tests if m.message() in r["message"]]
        assert named, f"{m.id}: no graded test of {m.function} named it:\n" + "\n".join(r["nodeid"] + " " + r["outcome"] + "\n" + r["message"] for r in golden_tests)
        assert all(r["outcome"] == "failed" for r in named)


@pytest.mark.parametrize("kind", ["identity", "zeros", "random"])
def test_bad_learners_fail_every_graded_test(tmp_path, kind):
    results = grade(tree(tmp_path, {m: spoiled(m, kind) for m in MODULES}))
    passed = [r["nodeid"] for r in results if r["outcome"] == "passed"]
    assert not passed, f"a learner returning {kind} passed: {passed}"
    assert sum(r["outcome"] == "failed" for r in results) >= 80


@pytest.mark.parametrize("module", MODULES)
def test_one_solution_turns_exactly_its_exercise_green(tmp_path, module):
    results = by_exercise(grade(tree(tmp_path, {module: solution(module)})))
    own = results.pop(module)
    assert all(r["outcome"] in ("passed", "skipped") for r in own), [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert any(r["outcome"] == "passed" for r in own)
    for other, rs in results.items():
        assert not any(r["outcome"] == "passed" for r in rs), f"{other} passed with only {module} implemented"


FAULTS = {
    "ex03_embeddings": '''
        def embed(tokens, tok_embeddings):
            rows = tok_embeddings[tokens]
            raise ValueError("I give up on purpose")
        ''',
    "ex04_rms_norm": '''
        import torch
        def rms_norm(x, weight, eps):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) * 0) * weight
        ''',
    "ex05_qkv": '''
        import torch
        def linear(x, weight):
            x.mul_(1.0)
            return x @ weight.T
        def project_qkv(x, wq, wk, wv, n_heads, n_kv_heads):
            raise NotImplementedError("not started: implement project_qkv in exercises/ex05_qkv.py (exercise 5)")
        ''',
    "ex09_feed_forward": '''
        def feed_forward(x, w1, w2, w3):
            while True:
                pass
        ''',
}


def test_a_learners_faults_are_each_one_clean_failure(tmp_path):
    from learners import dedent
    results = by_exercise(grade(tree(tmp_path, {m: dedent(s) for m, s in FAULTS.items()}), "--time-limit", "3", "-k",
                                "test_embed or test_rms_norm or test_linear or test_feed_forward"))

    embed = next(r for r in results["ex03_embeddings"] if "test_embed[" in r["nodeid"])
    assert embed["message"].startswith("embed raised ValueError: I give up on purpose")
    assert "ex03_embeddings.py:3 in embed" in embed["message"] and 'raise ValueError("I give up on purpose")' in embed["message"]
    assert "Traceback" not in embed["message"]

    norm = next(r for r in results["ex04_rms_norm"] if "test_rms_norm[" in r["nodeid"])
    assert "contains inf" in norm["message"] or "contains NaN" in norm["message"], norm["message"]

    linear = next(r for r in results["ex05_qkv"] if "test_linear[" in r["nodeid"])
    assert "changed its input 'x' in place" in linear["message"], linear["message"]

    ffn = next(r for r in results["ex09_feed_forward"] if "test_feed_forward[" in r["nodeid"])
    assert ffn["message"].startswith("time limit: the test ran longer than 3 s"), ffn["message"]
