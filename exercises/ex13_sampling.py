"""Exercise 13: Sampling (temperature, top-k, top-p).

Greedy decoding (exercise 12) always takes the most likely token. It is deterministic,
and it is what reproduces "42", but on open-ended text it tends to loop ("the the the",
or the same sentence again and again), because the single most likely continuation of
a repetition is more repetition. Chat models are therefore run by *sampling*: the next
token is drawn at random from the distribution the model predicts. Three knobs shape
that distribution first. Meta's chat defaults are temperature 0.6 and top-p 0.9.

From logits to a token
----------------------
For one position, the model gives logits [vocab_size] (128256 for Llama 3, 49152 for
SmolLM2). Then:

    logits / temperature                    [vocab]   sharpen (T < 1) or flatten (T > 1)
    top-k: keep the k largest, -inf else    [vocab]   k = 50: only 50 candidates remain
    top-p: keep the nucleus, -inf else      [vocab]   the most likely tokens whose mass reaches p
    probs = softmax(...)                    [vocab]   float32, sums to 1; 0 where -inf
    token = torch.multinomial(probs, 1, generator=...)

Temperature. softmax(l / T) with T = 1 is the model's own distribution. T < 1
stretches the gaps between logits, so likely tokens become likelier: T -> 0 tends to
the argmax. T > 1 squeezes them, and rare tokens come up more often. Temperature 0
is defined as greedy: return the argmax and draw nothing. The temperature divides the
*logits*, before the softmax. Dividing the probabilities after the softmax and
renormalising changes nothing at all: the grader names that mistake.

Top-k. Keep the k largest logits of each row and set every other one to -inf, so that
its probability becomes exactly 0. Exactly k survive. When several logits tie with the
k-th largest, keep the lowest token ids among them: that is what a stable descending
sort puts first (torch.sort(..., descending=True, stable=True)). torch.topk does not
promise an order among equal values, so it is not enough on its own here.

Top-p (nucleus sampling, Holtzman et al. 2019). Sort the tokens by probability,
descending, and keep the smallest set of the most likely tokens whose probabilities
add up to at least p. With p = 0.9 and a confident model that may be 3 tokens; with a
hesitant one, thousands. The rule, token by token in sorted order: keep a token when
the mass of the tokens ranked *before* it is still below p. So the token that crosses
p stays in (keeping only the tokens whose cumulative sum including themselves is
at most p leaves the set one token short of p: the grader names that one), and the
first token always stays, whatever p is.

    probs sorted   0.50  0.30  0.15  0.05
    mass before    0.00  0.50  0.80  0.95
    p = 0.7:       keep  keep  drop  drop      kept mass 0.80 >= 0.7
    p = 0.3:       keep  drop  drop  drop      kept mass 0.50 >= 0.3

The probabilities of top-p are those of the logits it receives: after temperature and
top-k, when they are used (Hugging Face and vLLM apply them in this same order).

Normalise once, at the end. Filter the *logits* (to -inf), then take one softmax: what
the filters leave sums to 1. Taking the softmax first and zeroing the filtered tokens
afterwards leaves probabilities that sum to less than 1 (torch.multinomial would
still draw, since it normalises its input, but `probabilities` must return a
distribution).

Seeded randomness
-----------------
torch.multinomial(probs, num_samples=1, generator=g) draws one id with probability
probs[id]. The generator holds the random state: torch.Generator().manual_seed(seed)
makes the same seed give the same tokens on every run, so an experiment can be
repeated, and a test can compare your draws with the reference's. Draw exactly once
per token with that call: the grader compares your tokens with the reference's for
fixed seeds, and another way of drawing (torch.rand and a cumulative sum, say) is
also correct but gives other tokens from the same seed.

The generator is the CPU's (torch.Generator() makes one there), and torch.multinomial
draws on its generator's device. With the model on a GPU, move the probabilities to
the generator for the draw: torch.multinomial(probs.to(generator.device), 1,
generator=generator), one [vocab] copy per token. That keeps the draws the same on
every device: a CUDA generator makes other random numbers from the same seed, and
the tokens the grader expects are the CPU's draws.

A sampler, and generate with it
-------------------------------
Sampler(temperature, top_k, top_p, seed) bundles the settings with its own generator;
calling it on logits [vocab] returns a token id. generate is exercise 12's cached loop
with one change: the next token is sampler(logits) instead of the argmax (greedy when
sampler is None). Everything else stays: one KVCache, the prompt prefilled once, then
one token per forward, stop tokens not yielded. `llama3-grader generate --temperature
0.8 --top-k 50 --top-p 0.9 --seed 1` runs your sampler end to end.

Cost: a sort of the whole vocabulary (128256 floats) takes milliseconds on a CPU, once
per token: not nothing against a decode step. Sorting is the clearest way to start.
The reference finds the same tokens without it: Tensor.topk of the few most likely
ones (it returns them sorted), then comparisons; `llama3-grader bench` shows what your
sampling adds to each token.

Pitfalls
--------
- Temperature applied after the softmax (it then does nothing), or to the
  probabilities as a power without saying so.
- Top-p keeping one token too few, or none at all when the first token alone is
  more likely than p.
- Normalising before filtering: the result no longer sums to 1.
- A fresh generator on every call (every token then uses the same random numbers).
- A Sampler on torch's global generator (torch.manual_seed, then torch.multinomial
  without generator=): one sampler alone draws the right tokens, but a second one, or
  any other random draw in between, changes them. The tests draw from two samplers in
  turn, with other draws between.
- A draw at temperature 0 (a multinomial over the argmax, or a tiny temperature): the
  token is right, the draws after it are not.
- sampler=None that is not greedy, or that calls None.
- Dividing bf16 logits by the temperature before converting them to float32.
- Changing the logits in place (logits[...] = -inf on the input): return a new tensor.

The grader names each of these when your result is exactly what it gives.

Run the tests: pytest exercises/ -k ex13
"""

from collections.abc import Callable, Iterator

import torch

# Your functions from exercises 11 and 12: call them here.
from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward
from .ex12_generation import KVCache


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (the lowest ids among ties), -inf elsewhere.

    Args:
        logits: [..., vocab], any leading dimensions (one row per position or per example).
        k: how many to keep, 1 <= k <= vocab.

    Returns:
        A new tensor like logits: the k kept values unchanged, -inf everywhere else.

    Hints:
        - torch.sort(logits, dim=-1, descending=True, stable=True).indices ranks the ids.
        - The ids ranked after the k-th are the ones to drop; Tensor.scatter(-1, ids,
          float("-inf")) writes -inf at them in a copy.
    """
    raise NotImplementedError("not started: implement top_k_filter in exercises/ex13_sampling.py (exercise 13)")


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches p (at least one), -inf elsewhere.

    Args:
        logits: [..., vocab]; may already hold -inf (after top-k).
        p: the mass to reach, 0 < p <= 1.

    Returns:
        A new tensor like logits: the nucleus unchanged, -inf everywhere else.

    Hints:
        - probs = torch.softmax(logits.float(), dim=-1); sort them descending (stable).
        - The mass before each sorted token is cumsum - its own probability; drop the
          tokens where that mass is already >= p.
        - Put the drop decisions back in id order (scatter with the sort's indices),
          then masked_fill.
    """
    raise NotImplementedError("not started: implement top_p_filter in exercises/ex13_sampling.py (exercise 13)")


def probabilities(
    logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """softmax(logits / temperature) over what top-k, then top-p, leave: float32, each row sums to 1.

    Args:
        logits: [..., vocab].
        temperature: > 0.
        top_k: keep this many (None: no top-k).
        top_p: keep the nucleus of this mass (None: no top-p).

    Returns:
        [..., vocab] float32 probabilities, 0 for every filtered token.

    Hints:
        - In this order: logits.float() / temperature, top_k_filter, top_p_filter,
          one torch.softmax.
    """
    raise NotImplementedError("not started: implement probabilities in exercises/ex13_sampling.py (exercise 13)")


def sample(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator
) -> int:
    """One token id from logits [vocab]: the argmax at temperature 0, else one draw of torch.multinomial.

    Args:
        logits: [vocab], one position's logits.
        temperature, top_k, top_p: as in probabilities; temperature 0 means greedy.
        generator: the torch.Generator to draw with.

    Returns:
        A Python int.

    Hints:
        - torch.multinomial(probs, num_samples=1, generator=generator) returns a
          one-element tensor; int() of it is the id.
        - Draw where the generator is: probs.to(generator.device).
    """
    raise NotImplementedError("not started: implement sample in exercises/ex13_sampling.py (exercise 13)")


class Sampler:
    """sample() with fixed settings and its own seeded generator: sampler(logits) -> token id."""

    def __init__(self, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, seed: int = 0):
        """Keep the settings, and make self.generator = torch.Generator().manual_seed(seed).

        Args:
            temperature, top_k, top_p: as in probabilities.
            seed: the seed of this sampler's own generator: the same seed, the same draws.

        Hints:
            - manual_seed returns the generator itself, so one line makes and seeds it.
        """
        raise NotImplementedError("not started: implement Sampler.__init__ in exercises/ex13_sampling.py (exercise 13)")

    def __call__(self, logits: torch.Tensor) -> int:
        """The next token for logits [vocab], drawn with this sampler's generator.

        Args:
            logits: [vocab], one position's logits.

        Returns:
            A Python int, the token id.

        Hints:
            - sample(logits, ...) with the kept settings and self.generator.
        """
        raise NotImplementedError("not started: implement Sampler.__call__ in exercises/ex13_sampling.py (exercise 13)")


def generate(
    prompt_ids: list[int],
    weights: dict[str, torch.Tensor],
    args: ModelArgs,
    max_new_tokens: int,
    stop_tokens=(),
    sampler: Callable[[torch.Tensor], int] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The cached generation of exercise 12, each token chosen by sampler(logits) (greedy when None); yields
    (token, logits).

    Args:
        prompt_ids, weights, args, max_new_tokens, stop_tokens: as in exercise 12.
        sampler: a function from logits [vocab] to a token id (e.g. a Sampler), or None.

    Yields:
        (token_id, logits [vocab_size]) pairs, as exercise 12's generate does.

    Hints:
        - Start from your exercise 12 generate: only the line that picks the token changes.
    """
    raise NotImplementedError("not started: implement generate in exercises/ex13_sampling.py (exercise 13)")
