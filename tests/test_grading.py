"""The graded tests themselves: the reference passes them all, the untouched stubs fail each as "not started",
every known mistake is named, bad learners fail every test, one solution turns exactly its exercise green,
and a learner's faults each become one clean failure. The trees the selected tests need are graded in one
subprocess (learners.grade_all), one pytest run each."""

import sys

import pytest

from grader import specs
import plants
from learners import (MODULES, by_exercise, early, graded_test_name, naming_tests, rounds, solution, spoiled, tree,
                      with_mistakes)


def _trees(items) -> dict:
    """By fixture name below: a function of tmp_path_factory.mktemp giving the trees that fixture grades for the
    selected items, with the arguments of each grading."""
    def rounds(mktemp):  # each graded on the tests that must name its mistakes, and the property tests read below
        return [(root := tree(mktemp("mistakes"), with_mistakes(round_)),
                 naming_tests(root, round_, [test for m in round_ for test in PROPERTY_TESTS.get(m.id, [])]))
                for round_ in ROUNDS]

    def faults(mktemp):
        planted = plants.planted(FAULTS.values())
        return [(tree(mktemp("faults"), planted), ("--time-limit", str(FAULT_TIME_LIMIT), "-k", FAULT_TESTS))]

    def unimportable(mktemp):
        planted = {m: solution(m) for m in MODULES}
        planted["ex04_rms_norm"] = planted["ex04_rms_norm"].replace("def rms_norm(", "def rms_norm(:", 1)
        planted["ex07_attention"] = "import einops\n" + planted["ex07_attention"]
        return [(tree(mktemp("unimportable"), planted), ())]

    return {
        "reference_results": lambda mktemp: [(tree(mktemp("reference")), ("--impl", "solutions"))],
        "stub_results": lambda mktemp: [(tree(mktemp("stubs")), ())],
        "round_results": rounds,
        "bad_results": lambda mktemp: [(tree(mktemp(kind), {m: spoiled(m, kind) for m in MODULES}), ())
                                       for kind in _kinds(items)],
        "some_solutions_results": lambda mktemp: [(tree(mktemp("some"), {m: solution(m) for m in solved}), ())
                                                  for solved in SOLVED_TOGETHER],
        "one_solution_results": lambda mktemp: [(tree(mktemp(module), {module: solution(module)}), ())
                                                for module in MODULES],
        "faults": faults,
        "unimportable_results": unimportable,
    }


_PLANNED: dict[str, int] = {}  # fixture -> how many trees it grades, in the order trees_to_grade gave them


def trees_to_grade(items, tmp_path_factory) -> list:
    """The trees of every fixture that a selected test uses, graded beside the session (tests/conftest.py)."""
    trees = _trees(items)
    wanted = [name for name in trees if any(name in item.fixturenames for item in items)]
    jobs = {name: trees[name](tmp_path_factory.mktemp) for name in wanted}
    _PLANNED.update({name: len(jobs[name]) for name in wanted})
    return [job for name in wanted for job in jobs[name]]


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory) -> dict[str, list[list[dict]]]:
    """{fixture: results per tree}"""
    results = iter(early(sys.modules[__name__], request, tmp_path_factory))
    return {name: [next(results) for _ in range(n)] for name, n in _PLANNED.items()}


@pytest.fixture(scope="module")
def reference_results(graded):
    return graded["reference_results"][0]


@pytest.fixture(scope="module")
def stub_results(graded):
    return graded["stub_results"][0]


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
    reasons = ("chains your earlier exercises", "LLAMA3_CHECKPOINT",
               "has no golden calls of",  # ex01 on the trained model
               "needs CUDA")  # a gpu-marked graded test, here where there is none
    assert all(any(reason in r["message"] for reason in reasons) for r in skipped), [r["message"] for r in skipped]


def test_each_exercise_has_at_least_three_graded_tests(reference_results):
    for module, results in by_exercise(reference_results).items():
        functions = {r["nodeid"].split("::")[1].split("[")[0] for r in results if r["outcome"] == "passed"}
        assert len(functions) >= 3, (module, functions)


ROUNDS = rounds(specs.MISTAKES, key=lambda m: (m.module, m.function))  # no two in a round replace one function
# the property tests that test_property_tests_judge_the_learners_own_outputs reads, by the mistake graded beside them
PROPERTY_TESTS = {"rope_on_halves": [("ex06_rope", "test_rope_preserves_norms"),
                                     ("ex06_rope", "test_q_dot_k_depends_only_on_the_offset"),
                                     ("ex06_rope", "test_pair_0_turns_by_t_radians")],
                  "attention_unscaled": [("ex07_attention", "test_causal_attention_ignores_future_tokens")]}


@pytest.fixture(scope="module")
def round_results(graded) -> list[list[dict]]:
    """Each round planted in its own tree."""
    return graded["round_results"]


@pytest.mark.parametrize("index", range(len(ROUNDS)), ids=["+".join(m.id for m in r) for r in ROUNDS])
def test_every_known_mistake_is_named(round_results, index):
    round_, results = ROUNDS[index], round_results[index]
    for m in round_:
        test_name = graded_test_name(m.function)
        golden_tests = [r for r in results if f"::{test_name}[" in r["nodeid"]]
        named = [r for r in golden_tests if r["mistake"] == m.id and m.message() in r["message"]]
        seen = "\n".join(r["nodeid"] + " " + r["outcome"] + "\n" + r["message"] for r in golden_tests)
        assert named, f"{m.id}: no graded test of {m.function} named it:\n" + seen
        assert all(r["outcome"] == "failed" for r in named)


def test_property_tests_judge_the_learners_own_outputs(round_results):
    """RoPE on halves is a rotation too, and unscaled attention is causal too: the property tests pass them (their
    golden tests and the pair-0 formula fail them, naming the mistake)."""
    index = next(i for i, r in enumerate(ROUNDS) if {"rope_on_halves", "attention_unscaled"} <= {m.id for m in r})
    outcome = {r["nodeid"].split("::")[1]: r for r in round_results[index]}
    for test in ("test_rope_preserves_norms", "test_q_dot_k_depends_only_on_the_offset",
                 "test_causal_attention_ignores_future_tokens"):
        assert outcome[test]["outcome"] == "passed", outcome[test]
    assert outcome["test_pair_0_turns_by_t_radians"]["outcome"] == "failed"


BAD_KINDS = ["identity", "zeros", "random"]


def _kinds(items) -> list[str]:
    """The bad learners whose test is selected: zeros and random run under -m slow."""
    selected = {item.callspec.params.get("kind") for item in items if hasattr(item, "callspec")}
    return [kind for kind in BAD_KINDS if kind in selected]


@pytest.fixture(scope="module")
def bad_results(request, graded) -> dict[str, list[dict]]:
    mine = [item for item in request.session.items if getattr(item, "module", None) is sys.modules[__name__]]
    return dict(zip(_kinds(mine), graded["bad_results"]))


@pytest.mark.parametrize("kind", [pytest.param(kind, marks=() if kind == "identity" else pytest.mark.slow)
                                  for kind in BAD_KINDS])  # identity, the subtlest (RoPE at position 0 is one), quick
def test_bad_learners_fail_every_graded_test(bad_results, kind):
    results = bad_results[kind]
    passed = [r["nodeid"] for r in results if r["outcome"] == "passed"]
    assert not passed, f"a learner returning {kind} passed: {passed}"
    assert sum(r["outcome"] == "failed" for r in results) >= 80


def solved_exactly(results: list[dict], solved) -> None:
    """Every graded test of the solved exercises passes (or skips), and none of the others passes."""
    grouped = by_exercise(results)
    for module in solved:
        own = grouped.pop(module)
        failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
        assert not failed, failed
        assert any(r["outcome"] == "passed" for r in own), f"no test of {module} passed"
    for other, rs in grouped.items():
        assert not any(r["outcome"] == "passed" for r in rs), f"{other} passed with only {', '.join(solved)} solved"


SOLVED_TOGETHER = (MODULES[0::2], MODULES[1::2])  # every other exercise solved, in two trees


@pytest.fixture(scope="module")
def some_solutions_results(graded) -> list[list[dict]]:
    return graded["some_solutions_results"]


@pytest.mark.parametrize("half", [0, 1])
def test_solutions_turn_exactly_their_exercises_green(some_solutions_results, half):
    """Each exercise passes beside unsolved ones it may build on, and fails beside solved ones: the quick form of the
    next test, which solves one exercise at a time (18 gradings)."""
    solved_exactly(some_solutions_results[half], SOLVED_TOGETHER[half])


@pytest.fixture(scope="module")
def one_solution_results(graded) -> dict[str, list[dict]]:
    return dict(zip(MODULES, graded["one_solution_results"]))


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_one_solution_turns_exactly_its_exercise_green(one_solution_results, module):
    solved_exactly(one_solution_results[module], [module])


# A learner's faults, one per module (tests/plants/<module>/faults/), each asserted on below.
FAULTS = {plant.module: plant for name, plant in plants.faults().items()
          if name in ("reserved_tokens_renamed", "model_args_as_a_dict", "prints_then_raises", "mean_square_times_zero",
                      "linear_changes_its_input", "apply_rope_returns_numpy", "mask_of_the_finite_minimum",
                      "keys_of_the_wrong_shape", "endless_loop", "next_token_as_a_tensor")}
# The endless loop runs this long; a worker that starts slowly on a busy machine (the early gradings yield the cores:
# learners.EARLY_NICE) has twice it before its first test counts as stuck.
FAULT_TIME_LIMIT = 5
FAULT_TESTS = ("test_special_tokens or test_model_args or test_embed or test_rms_norm or test_linear or "
               "test_rope_preserves_norms or "
               "test_causal_mask or test_mask_hides or test_self_attention or test_feed_forward or test_next_token")


@pytest.fixture(scope="module")
def faults(graded) -> dict[str, list[dict]]:
    return by_exercise(graded["faults"][0])


@pytest.fixture(scope="module")
def unimportable_results(graded) -> list[dict]:
    return graded["unimportable_results"][0]


def _first(results: list[dict], test: str) -> dict:
    return next(r for r in results if f"::{test}" in r["nodeid"])


def test_an_exception_shows_the_learners_line(faults):
    embed = _first(faults["ex03_embeddings"], "test_embed[")
    assert embed["message"].startswith("embed raised ValueError: I give up on purpose")
    line = FAULTS["ex03_embeddings"].line_of('raise ValueError("I give up on purpose")')
    assert f"ex03_embeddings.py:{line} in embed" in embed["message"]
    assert 'raise ValueError("I give up on purpose")' in embed["message"]
    assert "Traceback" not in embed["message"] and "row 14999" not in embed["message"]


def test_an_error_inside_the_reference_shows_the_learners_line_that_called_it(faults):
    """Exercise 8 passes keys of the wrong shape to the reference's attention (bound while grading exercise 8)."""
    message = _first(faults["ex08_multi_head_attention"], "test_self_attention[")["message"]
    line = FAULTS["ex08_multi_head_attention"].line_of("return attention(x, x[:, :3], x, mask)")
    assert f"exercises/ex08_multi_head_attention.py:{line} in self_attention" in message, message
    assert "return attention(x, x[:, :3], x, mask)" in message
    assert "raised inside the reference: solutions/ex07_attention.py:" in message


def test_nan_inf_and_in_place_changes_are_named(faults):
    norm = _first(faults["ex04_rms_norm"], "test_rms_norm[")
    assert "contains inf" in norm["message"] or "contains NaN" in norm["message"], norm["message"]
    linear = _first(faults["ex05_qkv"], "test_linear[")
    assert "changed its input 'x' in place" in linear["message"], linear["message"]


def test_after_one_time_out_the_function_s_other_tests_fail_at_once(faults):
    ffn = [r for r in faults["ex09_feed_forward"] if "test_feed_forward" in r["nodeid"]]
    assert len(ffn) == 3 and all(r["outcome"] == "failed" for r in ffn)
    limit = f"time limit: the test ran longer than {FAULT_TIME_LIMIT} s"
    timed_out = [r for r in ffn if r["message"].startswith(limit)]
    assert len(timed_out) == 1, [r["message"] for r in ffn]
    name = timed_out[0]["nodeid"].split("::")[1]
    for r in ffn:
        if r is not timed_out[0]:
            assert r["message"].startswith(f"not run: feed_forward ran past the time limit in {name}"), r["message"]


def test_a_wrong_dict_is_a_short_diff(faults):
    from solutions.ex01_tokenizer import special_tokens

    reserved = sum("reserved_special_token_" in name for name in special_tokens())
    message = _first(faults["ex01_tokenizer"], "test_special_tokens[")["message"]
    differ = f"out: dicts differ: {reserved} keys missing, {reserved} extra, 0 with another value (256 keys expected)"
    assert differ in message, message
    assert "'<|reserved_special_token_0|>'" in message and "'<|reserved_0|>': 128002" in message
    assert len(message) < 1500, len(message)


def test_a_dict_where_the_dataclass_is_the_contract(faults):
    message = _first(faults["ex02_checkpoint"], "test_model_args")["message"]
    assert ("model_args (tiny-llama3, llama3-8b) should return a ModelArgs (the dataclass given at the top of "
            "exercises/ex02_checkpoint.py), got dict") in message


def test_a_0_d_tensor_where_an_int_is_the_contract(faults):
    message = _first(faults["ex11_forward"], "test_next_token[")["message"]
    assert "out: expected an int, got a 0-d tensor (tensor(" in message and ".item()" in message, message


def test_a_numpy_array_in_a_property_test(faults):
    message = _first(faults["ex06_rope"], "test_rope_preserves_norms")["message"]
    assert message.startswith("apply_rope: expected a tensor, got ndarray"), message
    assert "Traceback" not in message and "TypeError" not in message


def test_a_finite_minimum_where_the_mask_needs_minus_inf(faults):
    for test in ("test_causal_mask[", "test_mask_hides_exactly_the_future"):
        message = _first(faults["ex07_attention"], test)["message"]
        assert "torch.finfo(torch.float32).min where -inf is expected" in message, message
        assert "exactly zero weight" in message, message


@pytest.mark.slow  # the scoreboard's test_a_syntax_error_in_exercise_4_fails_exercise_4_alone says it quickly
def test_an_exercise_that_does_not_import_fails_alone(unimportable_results):
    """A syntax error in exercise 4 and an import of a missing library in exercise 7: every other exercise is the
    reference and passes; the real-model tests skip; the end-to-end tests skip, naming the broken exercise."""
    results = unimportable_results
    failed = {r["exercise"] for r in results if r["outcome"] == "failed"}
    assert failed == {"ex04_rms_norm", "ex07_attention"}, [r["nodeid"] + "\n" + r["message"] for r in results
                                                           if r["exercise"] not in failed and r["outcome"] == "failed"]
    for r in results:
        if r["exercise"] == "ex04_rms_norm":
            assert r["outcome"] == "failed"
            assert r["message"].startswith("exercises/ex04_rms_norm.py cannot be imported: SyntaxError")
            assert "ex04_rms_norm.py:6" in r["message"] and "def rms_norm(:" in r["message"], r["message"]
        elif r["exercise"] == "ex07_attention":
            assert ("exercises/ex07_attention.py cannot be imported: ModuleNotFoundError: No module named 'einops'"
                    in r["message"])
            assert "ex07_attention.py:1 in <module>" in r["message"]
        elif "end_to_end" in r["nodeid"] or "test_your_own_" in r["nodeid"]:  # on the chain of the learner's modules
            assert r["outcome"] == "skipped", r
            assert "one does not import: exercises/ex04_rms_norm.py cannot be imported" in r["message"], r
        elif "the_real_model" in r["nodeid"]:
            assert r["outcome"] == "skipped" and "LLAMA3_CHECKPOINT" in r["message"], r
        elif "on_a_gpu" in r["nodeid"] and r["outcome"] == "skipped":
            assert "needs CUDA" in r["message"], r
        else:
            assert r["outcome"] == "passed", r
