"""Grading holds on a trained model's activations (outlier channels, near-tied logits), which random tiny weights
never show: on the fetched SmolLM2-135M-Instruct, with goldens built on 24 varied prompts (tests/prompts.py), the
reference and every correct variant (tests/plants/<module>/variants/) pass, and every named mistake is still caught
and named. Skipped, with the one line that fetches it, when the model is not in the kit's cache."""

import re

import pytest

import plants
from grader import specs
from grader.engine import goldens, models
from grader.formats import gguf, pypi
from learners import by_exercise, grade, grade_all, rounds as by_rounds, tree, with_mistakes
from prompts import PROMPTS

# Grading trees on 24 prompts takes minutes: opt-in (`pytest -m slow`), as CI runs it.
pytestmark = pytest.mark.slow

# Not on this model: ex01 grades Llama 3's tokenizer, and three of ex14's mistakes are in Llama 3's chat format (this
# model's is ChatML); ex17's collectives run on the tiny models only, and its 3 K/V heads split over 1 or 3 ranks,
# never more ranks than K/V heads, where the other two ex17 mistakes show. Exercise 18's compiled steps are graded on
# the tiny models only (compiling is the cost, not the model), and so is its generate compiled, the one case where
# positions as Python ints show (as a recompile per token: the tokens are right).
NOT_GRADED_HERE = {"ex01_tokenizer"}
TINY_ONLY = {"decode_step", "compile_step"}
INVISIBLE = {"header_without_blank_line", "content_not_stripped", "chat_begin_of_text_every_turn", "tp_kv_heads_tiled",
             "tp_no_kv_head", "position_as_a_python_int"}
MISTAKES = [m for m in specs.MISTAKES if m.module not in NOT_GRADED_HERE and m.id not in INVISIBLE
            and not m.function.startswith("parallel_") and m.function not in TINY_ONLY]
VARIANTS = {name: plant for name, plant in plants.variants().items() if plant.module not in NOT_GRADED_HERE}


@pytest.fixture(scope="module")
def trained_env(tmp_path_factory) -> dict[str, str]:
    """LLAMA3_CHECKPOINT at the trained model, with its goldens built on PROMPTS in a fresh cache."""
    folder = pypi.trained_folder()
    if folder is None:
        pytest.skip(gguf.FETCH_HINT)
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLAMA3_KIT_CACHE", str(cache))
        model = models.Model(models.REAL, folder, models.golden_dir(folder))
        goldens.build(model, model.golden_dir, PROMPTS)
    return {"LLAMA3_CHECKPOINT": str(folder), "LLAMA3_KIT_CACHE": str(cache)}


def on_trained(results: list[dict]) -> list[dict]:
    return [r for r in results if "[real]" in r["nodeid"]]


def test_the_goldens_cover_24_varied_prompts_some_long(trained_env):
    from grader.specs.inputs import GENERATION_PROMPT_TOKENS

    model = models.real(trained_env["LLAMA3_CHECKPOINT"])
    lengths = {name: len(model.checkpoint.tokenizer.encode(text)) for name, text in PROMPTS.items()}
    assert len(lengths) >= 24 and sum(n >= 200 for n in lengths.values()) >= 3, lengths
    assert (any(re.search(r"\d{4}", text) for text in PROMPTS.values())
            and any("首都" in text for text in PROMPTS.values()))
    assert max(lengths.values()) > GENERATION_PROMPT_TOKENS  # long prompts are graded through forward


def test_the_reference_passes_every_graded_test_on_the_trained_model(tmp_path, trained_env):
    results = on_trained(grade(tree(tmp_path), "--impl", "solutions", "-k", "real", env=trained_env))
    failed = [r["nodeid"] + "\n" + r["message"] for r in results if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert {r["exercise"][:4] for r in results if r["outcome"] == "passed"} >= {f"ex{n:02d}" for n in range(2, 13)}


@pytest.fixture(scope="module")
def variants_graded(tmp_path_factory, trained_env) -> dict[str, list[dict]]:
    """name -> the results on the trained model of that variant's exercise (every round planted in its own tree, all
    graded in one subprocess)."""
    rounds = plants.rounds(VARIANTS.values())
    jobs = plants.round_trees(rounds, tmp_path_factory.mktemp, "variants", only="real")
    results = {}
    for round_, found in zip(rounds, grade_all(jobs, env=trained_env)):
        results |= {plant.name: [r for r in on_trained(found) if r["exercise"] == plant.module] for plant in round_}
    return results


@pytest.mark.parametrize("name", list(VARIANTS))
def test_correct_implementations_written_differently_pass_on_the_trained_model(variants_graded, name):
    own = variants_graded[name]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert any(r["outcome"] == "passed" for r in own), f"{name}: no graded test of {VARIANTS[name].module} passed"


@pytest.mark.parametrize("round_", by_rounds(MISTAKES, key=lambda m: (m.module, m.function)),
                         ids=lambda r: "+".join(m.id for m in r))
def test_every_named_mistake_is_caught_and_named_on_the_trained_model(tmp_path, trained_env, round_):
    plants = with_mistakes(round_)
    results = by_exercise(on_trained(grade(tree(tmp_path, plants), "--impl", "exercises",
                                           "-k", f"({' or '.join(plants)}) and real", env=trained_env)))
    for m in round_:
        test_name = "test_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", m.function).lower()  # KVCache -> test_kv_cache
        own = [r for r in results.get(m.module, []) if f"::{test_name}[" in r["nodeid"]]
        assert own and all(r["outcome"] == "failed" for r in own), (
            f"{m.id}: {test_name} on the trained model did not fail")
        assert any(m.message() in r["message"] for r in own), (
            f"{m.id} was caught but not named:\n" + "\n".join(r["message"] for r in own))
