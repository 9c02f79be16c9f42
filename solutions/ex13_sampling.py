"""Exercise 13, reference: temperature, top-k and top-p sampling with a seeded generator, and generate with a
sampler."""

from collections.abc import Callable, Iterator

import torch

from .ex02_checkpoint import ModelArgs
from .ex11_forward import forward
from .ex12_generation import KVCache


def _largest(values: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """True at the n[..., 0] largest values of each row, the lowest ids among ties: the first n of a stable descending
    sort, found with topk and comparisons (no sort of the whole vocabulary, which costs more than a decode step's
    matmuls)."""
    # values [..., vocab], n [..., 1] >= 1
    nth = values.topk(int(n.max()), dim=-1).values.gather(-1, n - 1)  # [..., 1]: the n-th largest value
    above, tied = values > nth, values == nth  # [..., vocab] x 2
    room = n - above.sum(-1, keepdim=True)  # [..., 1]: how many of the tied values still fit
    return above | (tied & (tied.cumsum(-1) <= room))  # [..., vocab]


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (the lowest ids among ties), -inf elsewhere."""
    # logits [..., vocab]
    keep = _largest(logits, torch.full((*logits.shape[:-1], 1), k, device=logits.device))  # [..., vocab]
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches p (at least one), -inf elsewhere."""
    # logits [..., vocab]
    probs = torch.softmax(logits.float(), dim=-1)  # [..., vocab]
    vocab, m = probs.shape[-1], min(64, probs.shape[-1])
    while True:  # the most likely m, sorted: enough once they hold p (after top-k, at once)
        top = probs.topk(m, dim=-1).values  # [..., m], descending
        if m == vocab or bool((top.sum(-1) >= p).all()):
            break
        m = min(m * 8, vocab)
    mass_before = top.cumsum(-1) - top  # [..., m]: the mass ranked ahead of each token
    n = (mass_before < p).sum(-1, keepdim=True)  # [..., 1]: keep a token while the set has not reached p; n >= 1
    return logits.masked_fill(~_largest(probs, n), float("-inf"))  # [..., vocab]


def probabilities(
    logits: torch.Tensor, temperature: float, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """softmax(logits / temperature) over what top-k, then top-p, leave: float32, each row sums to 1."""
    # logits [..., vocab]
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.softmax(logits, dim=-1)  # [..., vocab]


def sample(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator
) -> int:
    """One token id from logits [vocab]: the argmax at temperature 0, else one draw of torch.multinomial, made where
    the generator is (the CPU), so that a seed draws the same tokens whatever device computed the logits."""
    if temperature == 0:
        return int(logits.argmax())
    probs = probabilities(logits, temperature, top_k, top_p)  # [vocab]
    return int(torch.multinomial(probs.to(generator.device), num_samples=1, generator=generator))


class Sampler:
    """sample() with fixed settings and its own seeded generator: sampler(logits) -> token id."""

    def __init__(self, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, seed: int = 0):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.generator = torch.Generator().manual_seed(seed)  # on the CPU, wherever the model runs

    def __call__(self, logits: torch.Tensor) -> int:
        return sample(logits, self.temperature, self.top_k, self.top_p, self.generator)


def generate(
    prompt_ids: list[int],
    weights: dict[str, torch.Tensor],
    args: ModelArgs,
    max_new_tokens: int,
    stop_tokens=(),
    sampler: Callable[[torch.Tensor], int] | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The cached generation of exercise 12, each token chosen by sampler(logits) (greedy when None); yields
    (token, logits)."""
    dtype, device = weights["tok_embeddings.weight"].dtype, weights["tok_embeddings.weight"].device
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim, dtype,
                    device=device)
    tokens = torch.tensor(prompt_ids, device=device)  # [prompt_len]
    start_pos = 0
    for _ in range(max_new_tokens):
        logits = forward(tokens, weights, args, cache, start_pos)[-1]  # [vocab_size]
        token = sampler(logits) if sampler is not None else int(logits.argmax())
        if token in stop_tokens:
            return
        yield token, logits
        start_pos += tokens.shape[0]
        tokens = torch.tensor([token], device=device)  # [1]
