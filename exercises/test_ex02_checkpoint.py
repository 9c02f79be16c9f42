"""Exercise 2 graded tests: params.json and the checkpoint. Run: pytest exercises/ -k ex02"""

import pickle

import pytest
import torch

from grader.testing import MODELS, RELEASED, expect_close, expect_equal


@pytest.mark.goldens("ffn_hidden_dim")
def test_ffn_hidden_dim(impl, golden):
    golden.check(impl.ffn_hidden_dim)


@pytest.mark.goldens("rope_scale_factor")
def test_rope_scale_factor(impl, golden):
    golden.check(impl.rope_scale_factor)


@pytest.mark.goldens("model_args")
def test_model_args(impl, golden):
    golden.check(impl.model_args)


@pytest.mark.goldens("load_params")
def test_load_params(impl, golden):
    golden.check(impl.load_params)


@pytest.mark.goldens("load_weights")
def test_load_weights(impl, golden):
    golden.check(impl.load_weights)


def test_published_ffn_sizes(impl):
    """docs/facts.md §1.2: 14336 for Llama 3 8B, 8192 for Llama 3.2 1B."""
    for name, size in (("llama3-8b", 14336), ("llama3.2-1b", 8192)):
        p = RELEASED[name]
        expect_equal(f"ffn_hidden_dim for {name}",
                     impl.ffn_hidden_dim(p["dim"], p["multiple_of"], p["ffn_dim_multiplier"]), size)


def test_load_weights_memory_maps_and_loads_weights_only(impl, monkeypatch):
    """mmap=True keeps 16 GB on disk until used; weights_only=True refuses pickles that run code."""
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    weights = impl.load_weights(MODELS / "tiny-llama3")
    expected = real_load(MODELS / "tiny-llama3" / "consolidated.00.pth", mmap=True, weights_only=True)
    expect_close("tok_embeddings.weight[:4]", weights["tok_embeddings.weight"][:4],
                 expected["tok_embeddings.weight"][:4])
    expect_equal("torch.load(..., mmap=)", seen.get("mmap"), True)
    expect_equal("torch.load(..., weights_only=)", seen.get("weights_only"), True)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this pickle ran code",))


def test_load_weights_refuses_a_pickle_that_runs_code(impl, tmp_path):
    """A plain tensor file loads; one whose pickle would call a function is refused (pickle.UnpicklingError)."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    torch.save({"norm.weight": torch.arange(4.0)}, good / "consolidated.00.pth")
    expect_close("norm.weight", impl.load_weights(good)["norm.weight"], torch.arange(4.0))
    torch.save({"norm.weight": torch.zeros(2), "payload": _RunsCode()}, bad / "consolidated.00.pth")
    with pytest.raises(pickle.UnpicklingError):
        impl.load_weights(bad)
