"""Exercise 13 graded tests: temperature, top-k, top-p and a seeded sampler. Run: pytest exercises/ -k ex13"""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import GradeFailure, expect_close, expect_equal, randn


@pytest.mark.goldens("top_k_filter")
def test_top_k_filter(impl, golden):
    golden.check(impl.top_k_filter)


@pytest.mark.goldens("top_p_filter")
def test_top_p_filter(impl, golden):
    golden.check(impl.top_p_filter)


@pytest.mark.goldens("probabilities")
def test_probabilities(impl, golden):
    golden.check(impl.probabilities)


@pytest.mark.goldens("sample")
def test_sample(impl, golden):
    golden.check(impl.sample)


@pytest.mark.goldens("Sampler")
def test_sampler(impl, golden):
    golden.check(impl.Sampler)


@pytest.mark.goldens("generate")
def test_generate(impl, golden):
    golden.check(impl.generate)


def _logits(seed: int, vocab: int, ties: bool) -> torch.Tensor:
    """Seeded logits [vocab]; with ties, whole numbers, so that many logits are equal."""
    x = randn(seed, vocab) * 2
    return x.round() if ties else x


def _kept(name: str, filtered, vocab: int) -> set[int]:
    """The ids a filter left finite, after checking it returned a tensor of logits."""
    if not isinstance(filtered, torch.Tensor) or filtered.shape != (vocab,):
        shape = list(filtered.shape) if isinstance(filtered, torch.Tensor) else type(filtered).__name__
        raise GradeFailure(f"{name} should return logits [{vocab}] (-inf where filtered), got {shape}")
    return set(torch.isfinite(filtered).nonzero()[:, 0].tolist())


def _ranked(logits: torch.Tensor) -> list[int]:
    """Ids from the largest logit down, the lowest id first among equals."""
    return sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))


@given(seed=st.integers(0, 2**31), vocab=st.integers(2, 200), k=st.integers(1, 200), ties=st.booleans())
def test_top_k_leaves_exactly_k_candidates(impl, seed, vocab, k, ties):
    """Exactly k logits stay, unchanged: the k largest, and among ties with the k-th the lowest ids (as documented)."""
    k = min(k, vocab)
    logits = _logits(seed, vocab, ties)
    out = impl.top_k_filter(logits, k)
    kept = _kept("top_k_filter", out, vocab)
    expect_equal("number of logits left finite", len(kept), k, why=f"top-k with k={k} keeps exactly k candidates")
    expect_equal("the ids kept", sorted(kept), sorted(_ranked(logits)[:k]),
                 why="the k largest logits; among logits equal to the k-th largest, the lowest ids "
                     "(a stable descending sort)")
    expect_close("the kept logits", out[sorted(kept)], logits[sorted(kept)],
                 why="top-k leaves the kept logits as they are")


@given(seed=st.integers(0, 2**31), vocab=st.integers(1, 200), p=st.floats(0.01, 0.99),
       scale=st.sampled_from([0.5, 2.0, 6.0]))
def test_top_p_keeps_the_smallest_set_that_reaches_p(impl, seed, vocab, p, scale):
    """The kept tokens are the most likely ones, their mass reaches p, and without the least likely of them it would
    not."""
    logits = randn(seed, vocab) * scale
    probs = torch.softmax(logits.double(), dim=-1)
    kept = _kept("top_p_filter", impl.top_p_filter(logits, p), vocab)
    if not kept:
        raise GradeFailure(f"top_p_filter (p={p:.3g}) left no token: the most likely one always stays")
    order = _ranked(logits)
    expect_equal("the ids kept", sorted(kept), sorted(order[:len(kept)]),
                 why="top-p keeps the most likely tokens, in order of probability")
    mass = float(probs[sorted(kept)].sum())
    if mass < p - 1e-6:
        raise GradeFailure(f"top_p_filter (p={p:.4g}) kept {len(kept)} tokens holding {mass:.4g} of the probability: "
                           f"keep tokens until their mass reaches p (the token that crosses p stays)")
    without_last = mass - float(probs[order[len(kept) - 1]])
    if len(kept) > 1 and without_last >= p + 1e-6:
        raise GradeFailure(f"top_p_filter (p={p:.4g}) kept {len(kept)} tokens, but the first {len(kept) - 1} already "
                           f"hold {without_last:.4g} >= p: keep the smallest set whose mass reaches p")


@given(seed=st.integers(0, 2**31), vocab=st.integers(1, 300), temperature=st.floats(0.05, 3.0),
       top_k=st.one_of(st.none(), st.integers(1, 300)), top_p=st.one_of(st.none(), st.floats(0.05, 1.0)))
def test_probabilities_sum_to_one(impl, seed, vocab, temperature, top_k, top_p):
    """Whatever the settings: float32, no negative value, each row sums to 1, and 0 exactly where a filter removed a
    token."""
    top_k = None if top_k is None else min(top_k, vocab)
    logits = randn(seed, 3, vocab) * 3
    probs = impl.probabilities(logits, temperature, top_k, top_p)
    if not isinstance(probs, torch.Tensor) or probs.shape != logits.shape or probs.dtype != torch.float32:
        what = f"{list(probs.shape)} {probs.dtype}" if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise GradeFailure(f"probabilities should return float32 [3, {vocab}], got {what}")
    if not (probs >= 0).all():
        raise GradeFailure("probabilities returned a negative or NaN value")
    expect_close("sum of each row", probs.sum(-1), torch.ones(3),
                 why="normalise once, after filtering: softmax over the filtered logits (-inf for every token removed)")


@given(seed=st.integers(0, 2**31), vocab=st.integers(2, 300), temperature=st.floats(0.1, 4.0),
       top_k=st.one_of(st.none(), st.integers(1, 300)))
def test_temperature_scales_the_logits_before_softmax(impl, seed, vocab, temperature, top_k):
    """probabilities(logits, T) is softmax(logits / T) over the top-k (scaling by T > 0 does not change which are the k
    largest)."""
    top_k = None if top_k is None else min(top_k, vocab)
    logits = randn(seed, vocab) * 2
    scaled = logits.double() / temperature
    if top_k is not None:
        scaled[_ranked(logits)[top_k:]] = float("-inf")
    expected = torch.softmax(scaled, dim=-1).float()
    expect_close(f"probabilities at temperature {temperature:.3g}",
                 impl.probabilities(logits, temperature, top_k, None), expected, tol="float32 layers",
                 why="divide the logits by the temperature, then softmax")


@given(seed=st.integers(0, 2**31), temperature=st.floats(0.3, 2.0), top_k=st.integers(20, 200))
def test_the_same_seed_gives_the_same_tokens(impl, seed, temperature, top_k):
    """Two samplers with one seed draw the same tokens; another seed draws others; every token is among the top k;
    at temperature 0 the sampler is greedy."""
    logits = randn(seed, 1000)
    logits[0] = -100.0  # token 0 is never among the top k

    def draw(s, t=temperature):
        return _draws(impl.Sampler(t, top_k, None, s), logits)

    first, again, other = draw(seed), draw(seed), draw(seed + 1)
    expect_equal("tokens drawn twice with the same seed", again, first, why="the generator's seed fixes the draws")
    if other == first:
        raise GradeFailure(f"Sampler with seeds {seed} and {seed + 1} drew the same 24 tokens {first}: seed the "
                           "generator with the sampler's seed, and draw from it (generator=...) for every token")
    allowed = set(_ranked(logits)[:top_k])
    outside = [t for t in first if t not in allowed]
    if outside:
        raise GradeFailure(f"Sampler(top_k={top_k}) drew {outside[:4]}, which are not among the {top_k} most likely "
                           "tokens")
    expect_equal("tokens at temperature 0", draw(seed, 0.0)[:4], [int(logits.argmax())] * 4,
                 why="temperature 0 is greedy: the argmax")


def _draws(sampler, logits, n: int = 24) -> list:
    tokens = [sampler(logits) for _ in range(n)]
    for t in tokens:
        if not isinstance(t, int) or isinstance(t, bool):
            raise GradeFailure(f"the sampler returned a {type(t).__name__}: return a Python int, "
                               "e.g. int(torch.multinomial(...))")
    return tokens
