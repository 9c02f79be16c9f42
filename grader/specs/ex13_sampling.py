"""Exercise 13, sampling: golden calls and named mistakes."""

import torch

from solutions import ex12_generation, ex13_sampling

from ..engine import impl as impls
from ..engine.calls import Call, Ref, generation
from ..engine.compare import GradeFailure
from ..i18n import say
from .checked_cache import check_cache_use
from .ex11_forward import new_tokens
from .spec import Spec, driver

spec = Spec("ex13_sampling")
SAMPLED_LOGITS = 256  # logit columns kept of each sampled step: the tokens are what sampling is graded on
# (temperature, top_k, top_p) of the sampling cases
SETTINGS = {"t1": (1.0, None, None), "t0.6_p0.9": (0.6, None, 0.9), "t0.8_k40_p0.95": (0.8, 40, 0.95),
            "t1.5_k10": (1.5, 10, None)}


def sampling_logits() -> torch.Tensor:
    """[4, 512] synthetic logits: flat, peaked like a language model's, whole numbers (ties at every k), one dominant
    token."""
    g = torch.Generator().manual_seed(13)
    rows = torch.randn(4, 512, generator=g) * torch.tensor([[1.0], [3.0], [2.0], [1.0]])
    rows[2] = rows[2].round()
    rows[3, 7] = 12.0
    return rows


@spec.cases
def calls(model, acts) -> list[Call]:
    """The filters and probabilities on synthetic logits; seeded draws with a generator and with a Sampler; and
    generate with the reference's Sampler from the first prompt."""
    m = spec.module
    name0, a0 = next(iter(acts.items()))
    logits = sampling_logits()

    def settings(name):
        return dict(zip(("temperature", "top_k", "top_p"), SETTINGS[name]))

    out = [Call(m, "top_k_filter", f"k{k}", {"logits": logits, "k": k}, tolerance="float32") for k in (1, 10, 100)]
    out += [Call(m, "top_p_filter", f"p{p}", {"logits": logits, "p": p}, tolerance="float32") for p in (0.05, 0.5, 0.9)]
    out += [Call(m, "probabilities", name, {"logits": logits, **settings(name)}, tolerance="float32")
            for name in SETTINGS]
    out += [Call(m, "sample", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8},
                 driver=drive_sample) for name, seed in (("t1", 0), ("t0.8_k40_p0.95", 1), ("t1.5_k10", 2))]
    out += [Call(m, "sample", "greedy", {"logits": logits, "temperature": 0.0, "top_k": None, "top_p": None, "seed": 0,
                                         "draws": 2}, driver=drive_sample)]
    out += [Call(m, "Sampler", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8},
                 driver=drive_sampler) for name, seed in (("t0.6_p0.9", 0), ("t0.8_k40_p0.95", 3))]
    gen = {"prompt_ids": a0.ids, "weights": Ref("weights", dtype="float32"), "args": Ref("args"),
           "max_new_tokens": new_tokens(model) // 2, "stop_tokens": list(model.checkpoint.tokenizer.stop_ids)}
    out += [Call(m, "generate", f"{name0}_{name}_seed{seed}", {**gen, **settings(name), "seed": seed},
                 tolerance="float32 layers", driver=drive_sampled_generate)
            for name, seed in (("t0.8_k40_p0.95", 0), ("t1", 1))]
    return out


def token_id(value, label: str) -> int:
    """value, checked to be the Python int a token id must be."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise GradeFailure(say("ex13.not_an_int", label=label, kind=type(value).__name__))
    return value


@driver
def drive_sample(sample, logits, temperature, top_k, top_p, seed, draws):
    """draws tokens from each row of logits, all with one generator seeded with seed."""
    generator = torch.Generator().manual_seed(seed)
    return {"tokens": [[token_id(sample(row, temperature, top_k, top_p, generator), "sample") for _ in range(draws)]
                       for row in logits]}


@driver
def drive_sampler(Sampler, logits, temperature, top_k, top_p, seed, draws):
    """draws tokens from each row of logits with one Sampler."""
    sampler = Sampler(temperature, top_k, top_p, seed)
    return {"tokens": [[token_id(sampler(row), "Sampler") for _ in range(draws)] for row in logits]}


@driver
def drive_sampled_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, temperature, top_k, top_p,
                           seed):
    """generate with the reference's Sampler (generate is graded on its own), through one cache; the tokens, which must
    be exactly the reference's (a draw has no near tie to forgive), and the logits."""
    sampler = ex13_sampling.Sampler(temperature, top_k, top_p, seed)
    with impls.spy(generate, "forward") as calls:
        steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens, sampler=sampler))
    check_cache_use(calls)
    out = generation(steps, generate.__name__, stop_tokens)
    return {"tokens": out["tokens"], "logits_head": out["logits_head"][:, :SAMPLED_LOGITS]}


@spec.mistake("top_k_filter", "top_k_keeps_ties",
              en="every logit tied with the k-th largest is kept, so more than k survive: keep exactly k, the lowest "
                 "ids among ties (torch.sort(..., descending=True, stable=True))",
              zh="与第 k 大的 logit 相等的都被保留了，于是留下的多于 k 个：应恰好保留 k 个，相等时保留 id 较小的"
                 "（torch.sort(..., descending=True, stable=True)）")
def top_k_keeping_ties(logits, k):
    kth = logits.topk(k, dim=-1).values[..., -1:]  # [..., 1]
    return logits.masked_fill(logits < kth, float("-inf"))


@spec.mistake("top_p_filter", "top_p_one_too_few",
              en="top-p keeps one token too few: it drops the token whose cumulative probability crosses p, so the "
                 "kept mass stays below p; keep a token while the mass ranked before it is below p",
              zh="top-p 少保留了一个 token：它丢掉了累计概率越过 p 的那个 token，于是保留的概率质量不到 p；"
                 "应在排在它之前的质量仍小于 p 时保留该 token")
def top_p_one_too_few(logits, p):
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    drop = sorted_probs.cumsum(-1) > p  # the token that crosses p is dropped too
    drop[..., 0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def filtered(logits, top_k, top_p):
    if top_k is not None:
        logits = ex13_sampling.top_k_filter(logits, top_k)
    if top_p is not None:
        logits = ex13_sampling.top_p_filter(logits, top_p)
    return logits


@spec.mistake("probabilities", "temperature_after_softmax",
              en="the temperature is applied after the softmax, where dividing and renormalising changes nothing: "
                 "divide the logits by the temperature before the softmax",
              zh="温度用在了 softmax 之后，此时相除再归一化什么也没改变：应在 softmax 之前把 logits 除以温度")
def probabilities_temperature_after_softmax(logits, temperature, top_k=None, top_p=None):
    probs = torch.softmax(filtered(logits.float(), top_k, top_p), dim=-1) / temperature
    return probs / probs.sum(-1, keepdim=True)


@spec.mistake("probabilities", "normalised_before_filtering",
              en="the softmax runs before top-k/top-p, so what the filters leave sums to less than 1: filter the "
                 "logits first (-inf for every token removed), then take one softmax",
              zh="softmax 在 top-k/top-p 之前做了，于是过滤后剩下的概率之和小于 1：应先过滤 logits（被去掉的设为 "
                 "-inf），再做一次 softmax")
def probabilities_normalised_before_filtering(logits, temperature, top_k=None, top_p=None):
    scaled = logits.float() / temperature
    return torch.softmax(scaled, dim=-1).masked_fill(filtered(scaled, top_k, top_p) == float("-inf"), 0.0)


@spec.mistake("generate", "generate_ignores_sampler",
              en="generate ignores its sampler and takes the argmax: choose each token with sampler(logits) (the "
                 "argmax only when sampler is None)",
              zh="generate 没有用它的 sampler，而是取了 argmax：应用 sampler(logits) 选出每个 token（只有 sampler 为 "
                 "None 时才取 argmax）")
def generate_ignoring_the_sampler(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    return ex12_generation.generate(prompt_ids, weights, args, max_new_tokens, stop_tokens)
