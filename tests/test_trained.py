"""Grading holds on a trained model's activations (outlier channels, near-tied logits), which random tiny weights
never show: on the fetched SmolLM2-135M-Instruct, with goldens built on 24 varied prompts (tests/prompts.py), the
reference and every correct variant (tests/plants/<module>/variants/) pass, and every named mistake is still caught
and named. Skipped, with the one line that fetches it, when the model is not in the kit's cache."""

import os
import re
import sys
from pathlib import Path

import pytest

import learners
import plants
from grader import specs
from grader.engine import models
from grader.formats import gguf, pypi
from learners import (by_exercise, graded_in, graded_test_name, grading_command, naming_tests, rounds as by_rounds,
                      tree, with_mistakes)
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


ROUNDS = by_rounds(MISTAKES, key=lambda m: (m.module, m.function))  # no two in a round replace one function
VARIANT_ROUNDS = plants.rounds(VARIANTS.values())
# The goldens on PROMPTS, built by a subprocess in the cache it is given (tests/ on its path, for prompts.py).
BUILD = ("import sys; from pathlib import Path; from grader.engine import goldens, models; "
         "from prompts import PROMPTS; folder = Path(sys.argv[1]); "
         "model = models.Model(models.REAL, folder, models.golden_dir(folder)); "
         "goldens.build(model, model.golden_dir, PROMPTS)")


def _jobs(items, mktemp) -> dict[str, list]:
    """The trees the selected tests grade on the trained model, with each grading's arguments: the reference's, the
    variants' rounds, and the mistakes' rounds by index."""
    names = {item.originalname for item in items}
    indexes = sorted({item.callspec.params["index"] for item in items
                      if item.originalname == "test_every_named_mistake_is_caught_and_named_on_the_trained_model"})
    jobs = {"reference": [(tree(mktemp("reference")), ("--impl", "solutions", "-k", "real"))]
            if "test_the_reference_passes_every_graded_test_on_the_trained_model" in names else [],
            "variants": plants.round_trees(VARIANT_ROUNDS, mktemp, "variants", only="real")
            if "test_correct_implementations_written_differently_pass_on_the_trained_model" in names else [],
            "mistakes": {}}
    for index in indexes:
        root = tree(mktemp("mistakes"), with_mistakes(ROUNDS[index]))
        jobs["mistakes"][index] = (root, ("--impl", "exercises", *naming_tests(root, ROUNDS[index]), "-k", "real"))
    return jobs


_PLANNED: dict[str, list] = {}  # what commands_to_run planned to grade, in order: _jobs' keys, the mistakes' indexes


def commands_to_run(items, tmp_path_factory) -> dict:
    """The goldens on PROMPTS in a fresh cache, then every tree the selected tests grade, in one subprocess: both
    beside the session (tests/conftest.py), as its other tests run. Nothing when the model is not fetched."""
    folder = pypi.trained_folder()
    if folder is None:
        return {}
    jobs = _jobs(items, tmp_path_factory.mktemp)
    graded = [*jobs["reference"], *jobs["variants"], *jobs["mistakes"].values()]
    if not graded:
        return {}
    _PLANNED.update(reference=jobs["reference"], variants=jobs["variants"], mistakes=list(jobs["mistakes"]))
    env = {"LLAMA3_CHECKPOINT": str(folder), "LLAMA3_KIT_CACHE": str(tmp_path_factory.mktemp("cache"))}
    build = ([sys.executable, "-c", BUILD, str(folder)], Path(__file__).parent,
             {**os.environ, **env, "PYTHONPATH": str(Path(__file__).parent)})
    return {"goldens": build, "gradings": grading_command(graded, env)}


@pytest.fixture(scope="module")
def folder() -> Path:
    """The fetched trained model's folder; the test skips, with the line that fetches it, when there is none."""
    found = pypi.trained_folder()
    if found is None:
        pytest.skip(gguf.FETCH_HINT)
    return found


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory, folder) -> dict:
    """{"reference": its results, "variants": results per round, "mistakes": {round index: results}}, graded on the
    trained model's goldens beside the session."""
    def ran(name: str):
        return learners.ran(sys.modules[__name__], name, request, tmp_path_factory)

    built = ran("goldens")
    assert built.returncode == 0, f"building the trained model's goldens failed:\n{built.stderr[-3000:]}"
    out = ran("gradings")
    assert out.returncode == 0, out.stderr[-3000:]
    found = iter(graded_in(out.stdout, sum(len(jobs) for jobs in _PLANNED.values())))
    return {"reference": next(found) if _PLANNED["reference"] else [],
            "variants": [next(found) for _ in _PLANNED["variants"]],
            "mistakes": {index: next(found) for index in _PLANNED["mistakes"]}}


def on_trained(results: list[dict]) -> list[dict]:
    return [r for r in results if "[real]" in r["nodeid"]]


def test_the_goldens_cover_24_varied_prompts_some_long(folder):
    from grader.specs.inputs import GENERATION_PROMPT_TOKENS

    model = models.real(str(folder))
    lengths = {name: len(model.checkpoint.tokenizer.encode(text)) for name, text in PROMPTS.items()}
    assert len(lengths) >= 24 and sum(n >= 200 for n in lengths.values()) >= 3, lengths
    assert (any(re.search(r"\d{4}", text) for text in PROMPTS.values())
            and any("首都" in text for text in PROMPTS.values()))
    assert max(lengths.values()) > GENERATION_PROMPT_TOKENS  # long prompts are graded through forward


def test_the_reference_passes_every_graded_test_on_the_trained_model(graded):
    results = on_trained(graded["reference"])
    failed = [r["nodeid"] + "\n" + r["message"] for r in results if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert {r["exercise"][:4] for r in results if r["outcome"] == "passed"} >= {f"ex{n:02d}" for n in range(2, 13)}


@pytest.fixture(scope="module")
def variants_graded(graded) -> dict[str, list[dict]]:
    """name -> the results on the trained model of that variant's exercise (every round planted in its own tree)."""
    results = {}
    for round_, found in zip(VARIANT_ROUNDS, graded["variants"]):
        results |= {plant.name: [r for r in on_trained(found) if r["exercise"] == plant.module] for plant in round_}
    return results


@pytest.mark.parametrize("name", list(VARIANTS))
def test_correct_implementations_written_differently_pass_on_the_trained_model(variants_graded, name):
    own = variants_graded[name]
    failed = [r["nodeid"] + "\n" + r["message"] for r in own if r["outcome"] == "failed"]
    assert not failed, "\n\n".join(failed)
    assert any(r["outcome"] == "passed" for r in own), f"{name}: no graded test of {VARIANTS[name].module} passed"


@pytest.mark.parametrize("index", range(len(ROUNDS)), ids=["+".join(m.id for m in r) for r in ROUNDS])
def test_every_named_mistake_is_caught_and_named_on_the_trained_model(graded, index):
    results = by_exercise(on_trained(graded["mistakes"][index]))
    for m in ROUNDS[index]:
        test_name = graded_test_name(m.function)
        own = [r for r in results.get(m.module, []) if f"::{test_name}[" in r["nodeid"]]
        assert own and all(r["outcome"] == "failed" for r in own), (
            f"{m.id}: {test_name} on the trained model did not fail")
        assert any(m.message() in r["message"] for r in own), (
            f"{m.id} was caught but not named:\n" + "\n".join(r["message"] for r in own))
