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
    """The filters and probabilities on synthetic logits (and on them in bf16); seeded draws with a generator, greedy
    draws between them, with a Sampler, and with two Samplers drawn in turn; generate with the reference's Sampler from
    the first prompt, once with a stop token it draws at the fourth step, and with no sampler (greedy)."""
    m = spec.module
    name0, a0 = next(iter(acts.items()))
    logits = sampling_logits()

    def settings(name):
        return dict(zip(("temperature", "top_k", "top_p"), SETTINGS[name]))

    out = [Call(m, "top_k_filter", f"k{k}", {"logits": logits, "k": k}, tolerance="float32") for k in (1, 10, 100)]
    out += [Call(m, "top_p_filter", f"p{p}", {"logits": logits, "p": p}, tolerance="float32") for p in (0.05, 0.5, 0.9)]
    out += [Call(m, "probabilities", name, {"logits": logits, **settings(name)}, tolerance="float32")
            for name in SETTINGS]
    out += [Call(m, "probabilities", f"{name}_bf16", {"logits": logits.bfloat16(), **settings(name)},
                 tolerance="float32") for name in ("t0.6_p0.9", "t1.5_k10")]
    out += [Call(m, "sample", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8},
                 driver=drive_sample) for name, seed in (("t1", 0), ("t0.8_k40_p0.95", 1), ("t1.5_k10", 2))]
    out += [Call(m, "sample", "greedy", {"logits": logits, "temperature": 0.0, "top_k": None, "top_p": None, "seed": 0,
                                         "draws": 2}, driver=drive_sample)]
    out += [Call(m, "sample", "greedy_between_draws", {"logits": logits, "temperatures": [1.0, 0.0, 1.0, 0.0, 1.0],
                                                       "seed": 4}, driver=drive_sample_in_turn)]
    out += [Call(m, "Sampler", f"{name}_seed{seed}", {"logits": logits, **settings(name), "seed": seed, "draws": 8},
                 driver=drive_sampler) for name, seed in (("t0.6_p0.9", 0), ("t0.8_k40_p0.95", 3))]
    out += [Call(m, "Sampler", "two_in_turn", {"logits": logits, "first": [*SETTINGS["t1"], 5],
                                              "second": [*SETTINGS["t1.5_k10"], 6], "draws": 4},
                 driver=drive_samplers_in_turn)]
    gen = {"prompt_ids": a0.ids, "weights": Ref("weights", dtype="float32"), "args": Ref("args"),
           "max_new_tokens": new_tokens(model) // 2, "stop_tokens": list(model.checkpoint.tokenizer.stop_ids)}
    out += [Call(m, "generate", f"{name0}_{name}_seed{seed}", {**gen, **settings(name), "seed": seed},
                 tolerance="float32 layers", driver=drive_sampled_generate)
            for name, seed in (("t0.8_k40_p0.95", 0), ("t1", 1))]
    stop = sampled_stop(model, a0.ids, SETTINGS["t1"], 2)
    out += [Call(m, "generate", f"{name0}_t1_seed2_stop_token", {**gen, "stop_tokens": stop, **settings("t1"),
                                                                 "seed": 2},
                 tolerance="float32 layers", driver=drive_sampled_generate)]
    out += [Call(m, "generate", f"{name0}_no_sampler", {**gen, "temperature": None, "top_k": None, "top_p": None,
                                                        "seed": None},
                 tolerance="float32 layers", driver=drive_sampled_generate)]
    return out


def sampled_stop(model, ids: list[int], settings: tuple, seed: int) -> list[int]:
    """A stop token the reference's sampled generation meets at its fourth step (random weights never draw EOS), to
    grade the branch where sampled generation stops."""
    sampler = ex13_sampling.Sampler(*settings, seed)
    steps = ex13_sampling.generate(ids, model.weights("float32"), model.checkpoint.args, 4, sampler=sampler)
    return [[t for t, _ in steps][3]]


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
def drive_sample_in_turn(sample, logits, temperatures, seed):
    """From each row of logits, one draw at each temperature in turn, all with one generator: a draw at temperature 0
    takes nothing from the generator, so the draws after it are the seed's next ones."""
    generator = torch.Generator().manual_seed(seed)
    return {"tokens": [[token_id(sample(row, t, None, None, generator), "sample") for t in temperatures]
                       for row in logits]}


@driver
def drive_sampler(Sampler, logits, temperature, top_k, top_p, seed, draws):
    """draws tokens from each row of logits with one Sampler."""
    with torch.random.fork_rng(devices=[]):  # a Sampler that seeds torch's own generator leaves it as it was
        sampler = Sampler(temperature, top_k, top_p, seed)
        return {"tokens": [[token_id(sampler(row), "Sampler") for _ in range(draws)] for row in logits]}


@driver
def drive_samplers_in_turn(Sampler, logits, first, second, draws):
    """Two Samplers made one after the other, drawn from in turn, with a draw from torch's global generator before
    each: each has its own generator, so each gives the tokens its own seed gives."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        samplers = {"first": Sampler(*first), "second": Sampler(*second)}
        tokens = {"first": [], "second": []}
        for row in logits:
            for _ in range(draws):
                for name, sampler in samplers.items():
                    torch.rand(1)  # someone else's random draw, between any two of the samplers'
                    tokens[name].append(token_id(sampler(row), "Sampler"))
    return tokens


@driver
def drive_sampled_generate(generate, prompt_ids, weights, args, max_new_tokens, stop_tokens, temperature, top_k, top_p,
                           seed):
    """generate with the reference's Sampler (generate is graded on its own), through one cache; the tokens, which must
    be exactly the reference's (a draw has no near tie to forgive), and the logits. With seed None, generate with
    sampler=None, compared as greedy generation is (tie-aware)."""
    sampler = None if seed is None else ex13_sampling.Sampler(temperature, top_k, top_p, seed)
    with impls.spy(generate, "forward") as calls:
        steps = list(generate(prompt_ids, weights, args, max_new_tokens, stop_tokens, sampler=sampler))
    check_cache_use(calls)
    out = generation(steps, generate.__name__, stop_tokens)
    if sampler is None:
        return out
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


@spec.mistake("top_p_filter", "top_p_keeps_none",
              en="top-p kept no token where the most likely one alone holds more than p (every logit is -inf): the "
                 "first token always stays; keep a token while the mass ranked before it is below p",
              zh="当最可能的那个 token 单独的概率就超过 p 时，top-p 一个 token 也没留下（所有 logit 都是 -inf）："
                 "第一个 token 总是保留；应在排在它之前的质量仍小于 p 时保留该 token")
def top_p_keeping_none(logits, p):
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    keep = sorted_probs.cumsum(-1) <= p  # [..., vocab]: the first token is dropped too when it alone passes p
    return logits.masked_fill(~torch.zeros_like(keep).scatter(-1, order, keep), float("-inf"))


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


@spec.mistake("probabilities", "temperature_in_bf16",
              en="the logits are divided by the temperature in their own dtype (bfloat16), which rounds each to 8 bits "
                 "and moves the probabilities by a few percent: convert to float32 first, logits.float() / temperature",
              zh="logits 在自己的 dtype（bfloat16）中除以温度，每个值都被舍入到 8 位，概率因此偏差百分之几：应先转成 "
                 "float32，即 logits.float() / temperature")
def probabilities_temperature_in_bf16(logits, temperature, top_k=None, top_p=None):
    return torch.softmax(filtered(logits / temperature, top_k, top_p).float(), dim=-1)


@spec.mistake("sample", "greedy_draws_from_the_generator",
              en="at temperature 0, sample still drew from the generator (a multinomial over the argmax), so every "
                 "draw after it moved: temperature 0 is the argmax and leaves the generator untouched",
              zh="温度为 0 时 sample 仍从生成器中抽了一次（对 argmax 做 multinomial），于是之后的每次抽样都变了："
                 "温度 0 就是 argmax，不动生成器")
def sample_greedy_by_a_draw(logits, temperature, top_k, top_p, generator):
    if temperature == 0:
        probs = torch.zeros(logits.shape[-1])  # [vocab]
        probs[int(logits.argmax())] = 1.0  # all on the argmax
    else:
        probs = ex13_sampling.probabilities(logits, temperature, top_k, top_p)
    return int(torch.multinomial(probs, num_samples=1, generator=generator))


@spec.mistake("Sampler", "sampler_on_the_global_generator",
              en="the Sampler draws from torch's global generator (torch.manual_seed): a second Sampler, or any other "
                 "random draw in between, changes its tokens; give it a torch.Generator of its own, seeded with seed, "
                 "and pass it to every draw",
              zh="Sampler 从 torch 的全局生成器抽样（torch.manual_seed）：另一个 Sampler，或中间任何别的随机抽样，"
                 "都会改变它的 token；应给它一个自己的 torch.Generator，用 seed 设定种子，并在每次抽样时传入")
class SamplerOnTheGlobalGenerator(ex13_sampling.Sampler):
    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
        super().__init__(temperature, top_k, top_p, seed)
        torch.manual_seed(seed)

    def __call__(self, logits):
        if self.temperature == 0:
            return int(logits.argmax())
        probs = ex13_sampling.probabilities(logits, self.temperature, self.top_k, self.top_p)
        return int(torch.multinomial(probs, num_samples=1))


@spec.mistake("Sampler", "sampler_fresh_generator_per_call",
              en="the Sampler makes a fresh generator on every call, so every token is drawn with the same random "
                 "number: make the generator once, in __init__, and keep drawing from it",
              zh="Sampler 每次调用都新建一个生成器，于是每个 token 都用同一个随机数抽出：应在 __init__ 中只建一次"
                 "生成器，之后一直从它抽样")
class SamplerWithAFreshGenerator(ex13_sampling.Sampler):
    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=0):
        super().__init__(temperature, top_k, top_p, seed)
        self.seed = seed

    def __call__(self, logits):
        generator = torch.Generator().manual_seed(self.seed)
        return ex13_sampling.sample(logits, self.temperature, self.top_k, self.top_p, generator)


@spec.mistake("generate", "generate_samples_without_a_sampler",
              en="with sampler=None, generate sampled (a default Sampler) instead of taking the argmax: no sampler "
                 "means greedy, exercise 12's choice",
              zh="sampler=None 时 generate 仍在抽样（用了默认的 Sampler），而不是取 argmax：没有 sampler 就是贪心，"
                 "即练习 12 的选择")
def generate_sampling_without_a_sampler(prompt_ids, weights, args, max_new_tokens, stop_tokens=(), sampler=None):
    return ex13_sampling.generate(prompt_ids, weights, args, max_new_tokens, stop_tokens,
                                  sampler if sampler is not None else ex13_sampling.Sampler())
