"""Greedy written as a sampler of its own (argmax, no generator touched), chosen when sampler is None; a Sampler that
makes its generator on the CPU and keeps the settings in a dict."""

import torch

from solutions.ex13_sampling import KVCache, forward, probabilities


def _greedy(logits):
    return int(torch.argmax(logits))


def sample(logits, temperature, top_k, top_p, generator):
    if not temperature:
        return _greedy(logits)
    probs = probabilities(logits, temperature, top_k, top_p).cpu()
    return torch.multinomial(probs, 1, generator=generator).item()


class Sampler:
    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
        self.settings = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    def __call__(self, logits):
        return sample(logits, generator=self.generator, **self.settings)


def generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    choose = sampler or _greedy
    cache = KVCache(args.n_layers, len(prompt_ids) + max_new_tokens, args.n_kv_heads, args.head_dim,
                    weights["norm.weight"].dtype)
    fed, position = list(prompt_ids), 0
    for _ in range(max_new_tokens):
        logits = forward(torch.tensor(fed), weights, args, cache, position)[-1]
        position += len(fed)
        token = choose(logits)
        if token in set(stop_tokens):
            break
        yield token, logits
        fed = [token]
