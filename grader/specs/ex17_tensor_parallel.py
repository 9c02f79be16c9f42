"""Exercise 17, tensor parallelism: golden calls and named mistakes.

The collectives run on N ranks (grader.engine.ranks). drive_ranks runs in the test's process; the rank_* jobs run on
every rank, each on its own share of the weights, cut by the reference's shard_weights."""

import dataclasses
import inspect
import sys

import torch
import torch.distributed as dist

from solutions import ex02_checkpoint, ex03_embeddings, ex08_multi_head_attention, ex09_feed_forward
from solutions import ex17_tensor_parallel as tp

from ..engine import ranks
from ..engine.calls import Call, Ref
from ..engine.compare import GradeFailure
from ..formats import checkpoint, shards
from ..i18n import say
from .checked_cache import drive_forward_cached, drive_generate, drive_layer_cached
from .inputs import LAYER0, RELEASED, short
from .outputs import first_columns, sampled
from .spec import Spec, driver

spec = Spec("ex17_tensor_parallel")
PARALLEL_RANKS = 4  # the most processes a graded call starts


@spec.cases
def calls(model, acts) -> list[Call]:
    """The sharding on every model; the collectives on the tiny ones, on every rank count up to PARALLEL_RANKS that
    splits them (1, 2 and 4 for tiny-llama3, whose 2 K/V heads are repeated on 4 ranks; 1 and 2 for tiny-llama3.2),
    each against the reference's result on as many ranks: the embedding of the prompt and of the ids at the edges of
    every rank's slice, and generation once with a stop token met at the fourth step."""
    m = spec.module
    a0 = next(iter(acts.values()))
    args = model.checkpoint.args
    counts = shards.rank_counts(args, PARALLEL_RANKS)
    pairs = [(n, r) for n in counts if n > 1 for r in (0, n - 1)]
    out = [Call(m, "split_dim", "names", {"names": list(model.checkpoint.weights)}, driver=drive_split_dim)]
    out += [Call(m, "shard", f"{short(name)}_rank{r}_of_{n}", {"weight": Ref("weight", name), "dim": tp.split_dim(name),
                                                              "rank": r, "world_size": n})
            for name in (LAYER0[0], LAYER0[3], LAYER0[4], LAYER0[5]) for n, r in pairs]
    wk = {"weight": Ref("weight", LAYER0[1]), "n_kv_heads": args.n_kv_heads}
    out += [Call(m, "shard_kv", f"wk_rank{r}_of_{n}", {**wk, "rank": r, "world_size": n})
            for n in counts for r in range(n)]
    out += [Call(m, "shard_weights", f"rank{r}_of_{n}", {"weights": Ref("weights"), "args": Ref("args"), "rank": r,
                                                        "world_size": n},
                 driver=drive_shard_weights) for n, r in [(1, 0), *pairs]]
    released = (("llama3-8b", 1), ("llama3-8b", 4), ("llama3-70b", 8), ("llama3.1-405b", 16), ("llama3.2-1b", 2))
    out += [Call(m, "local_args", f"{name}_{n}_ranks", {"params": RELEASED[name], "world_size": n},
                 driver=drive_local_args) for name, n in released]
    if not model.is_tiny:  # N processes of a real model's float32 share each: too much for a graded test
        return out

    def ranks_call(function, n, job, case="", tolerance="float32 layers", **kwargs):
        return Call(m, function, f"{n}_ranks{case}", {"world_size": n, "job": job, "folder": Ref("folder"), **kwargs},
                    tolerance=tolerance, driver=drive_ranks)

    x, h = a0.x_normed.float(), a0.h_normed.float()
    gen = {"prompt_ids": a0.ids, "max_new_tokens": 16, "stop_tokens": list(model.checkpoint.tokenizer.stop_ids)}
    edges = slice_edges(args.vocab_size, counts)
    for n in counts:
        out += [ranks_call("parallel_embed", n, "rank_embed", dtype="", tokens=a0.tokens, tolerance="bf16"),
                ranks_call("parallel_embed", n, "rank_embed", case="_slice_edges", dtype="", tokens=edges,
                           tolerance="bf16"),
                ranks_call("parallel_attention", n, "rank_attention", dtype="float32", x=x, layer_id=0,
                           freqs_cis=a0.freqs_cis, mask=a0.mask),
                ranks_call("parallel_feed_forward", n, "rank_feed_forward", dtype="float32", x=h, layer_id=0),
                ranks_call("parallel_forward", n, "rank_forward", dtype="float32", tokens=a0.tokens),
                ranks_call("parallel_generate", n, "rank_generate", dtype="float32", **gen)]
    n = counts[-1]
    out += [ranks_call("parallel_attention", n, "rank_attention", case="_" + case, dtype="float32", x=x, layer_id=0,
                       freqs_cis=a0.freqs_cis, chunks=chunks) for case, chunks in a0.cached.items()]
    out += [ranks_call("parallel_forward", n, "rank_forward", case="_" + case, dtype="float32", tokens=a0.tokens,
                       chunks=chunks) for case, chunks in a0.cached.items()]
    out += [ranks_call("parallel_generate", n, "rank_generate", case="_bf16", dtype="", tolerance="bf16 attention",
                       **gen)]
    out += [ranks_call("parallel_generate", n, "rank_generate", case="_stop_token", dtype="float32",
                       **{**gen, "stop_tokens": a0.forced_stop})]
    return out


def slice_edges(vocab_size: int, counts) -> torch.Tensor:
    """The first and last id of every rank's slice of the vocabulary, on every rank count graded: id 0, vocab_size - 1,
    and each r * vocab_size / n with the id before it."""
    starts = {r * vocab_size // n for n in counts for r in range(n)}
    return torch.tensor(sorted({i for s in starts for i in (s - 1, s) if 0 <= i} | {vocab_size - 1}))  # [edges]


@driver
def drive_split_dim(split_dim, names):
    said = {name: split_dim(name) for name in names}
    for name, dim in said.items():
        if dim not in (0, 1, None) or isinstance(dim, bool):
            raise GradeFailure(say("ex17.bad_split_dim", name=repr(name), dim=repr(dim)))
    return {"dims": said}


@driver
def drive_shard_weights(shard_weights, weights, args, rank, world_size):
    """The names and shapes of rank's share, layer 0's norm, and four rows of layer 0's matrices and the vocabulary's
    two."""
    got = shard_weights(weights, args, rank, world_size)
    if not isinstance(got, dict) or not all(isinstance(t, torch.Tensor) for t in got.values()):
        raise GradeFailure(say("ex17.shards_not_tensors", kind=type(got).__name__))
    out = {"names": sorted(got), "shapes": {name: list(t.shape) for name, t in got.items()}}
    out |= {name: got[name] for name in ("layers.0.attention_norm.weight",) if name in got}
    out |= {f"{name}[rows]": got[name][[0, 1, -2, -1]] for name in (*LAYER0, "tok_embeddings.weight", "output.weight")
            if name in got and got[name].dim() == 2 and got[name].shape[0] >= 2}
    return out


@driver
def drive_local_args(local_args, params, world_size):
    """local_args of a released model's params, as a dict."""
    got = local_args(ex02_checkpoint.model_args(params), world_size)
    if not isinstance(got, ex02_checkpoint.ModelArgs):
        raise GradeFailure(say("ex17.not_model_args", kind=type(got).__name__))
    return {**dataclasses.asdict(got), "head_dim": got.head_dim}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@driver
def drive_ranks(target, world_size, job, **kwargs):
    """RANK_JOBS[job] with target on world_size ranks: rank 0's outputs, and which ranks ended with other values
    (after the collectives every rank must hold the same result)."""
    results = ranks.run(world_size, RANK_JOBS[job], target, kwargs)
    differing = [r for r, res in enumerate(results) if not same(res, results[0])]
    return {**results[0], "ranks_differing_from_rank_0": differing}


_RANK_WEIGHTS: dict = {}


def rank_weights(folder, dtype: str):
    """This rank's args and share of a checkpoint's weights (the reference's shard_weights), in dtype ("": the
    file's)."""
    key = (str(folder), dtype)
    if key not in _RANK_WEIGHTS:
        args, share = shards.rank_share(folder, dist.get_rank(), dist.get_world_size())
        _RANK_WEIGHTS[key] = args, checkpoint.cast(share, dtype) if dtype else share
    return _RANK_WEIGHTS[key]


def rank_args(args):
    """This rank's ModelArgs (the reference's local_args)."""
    return tp.local_args(args, dist.get_world_size())


def rank_embed(parallel_embed, folder, dtype, tokens):
    _, w = rank_weights(folder, dtype)
    return {"out": parallel_embed(tokens, w["tok_embeddings.weight"])}


def rank_attention(parallel_attention, folder, dtype, x, layer_id, freqs_cis, mask=None, chunks=None):
    args, w = rank_weights(folder, dtype)
    if chunks is not None:
        return drive_layer_cached(parallel_attention, x, w, layer_id, args, freqs_cis, chunks, rank_args(args))
    return {"out": parallel_attention(x, w, layer_id, args, freqs_cis, mask)}


def rank_feed_forward(parallel_feed_forward, folder, dtype, x, layer_id):
    _, w = rank_weights(folder, dtype)
    p = f"layers.{layer_id}.feed_forward."
    return {"out": parallel_feed_forward(x, w[p + "w1.weight"], w[p + "w2.weight"], w[p + "w3.weight"])}


def rank_forward(parallel_forward, folder, dtype, tokens, chunks=None):
    args, w = rank_weights(folder, dtype)
    if chunks is not None:
        return first_columns(drive_forward_cached(parallel_forward, tokens, w, args, chunks, rank_args(args)))
    return sampled(parallel_forward(tokens, w, args), parallel_forward.__name__)


def rank_generate(parallel_generate, folder, dtype, prompt_ids, max_new_tokens, stop_tokens):
    args, w = rank_weights(folder, dtype)
    return first_columns(drive_generate(parallel_generate, prompt_ids, w, args, max_new_tokens, stop_tokens,
                                        forward="parallel_forward", n_kv_heads=rank_args(args).n_kv_heads))


def rank_own_generate(parallel_generate, folder, prompt_ids, max_new_tokens, stop_tokens):
    """parallel_generate on the share its own module's shard_weights cuts, in float32: the tokens."""
    ck = checkpoint.load(folder)
    own = sys.modules[inspect.unwrap(parallel_generate).__module__].shard_weights
    share = checkpoint.cast(own(ck.weights, ck.args, dist.get_rank(), dist.get_world_size()), "float32")
    return [token for token, _ in parallel_generate(prompt_ids, share, ck.args, max_new_tokens, stop_tokens)]


RANK_JOBS = {f.__name__: f for f in (rank_embed, rank_attention, rank_feed_forward, rank_forward, rank_generate)}


@spec.mistake("split_dim", "tp_row_parallel_as_column",
              en="wo and w2 are cut along dim 0: they are row-parallel, cut along dim 1 (their input), so that each "
                 "rank multiplies the heads and hidden units it holds and the all-reduce sums the parts",
              zh="wo 和 w2 被沿 dim 0 切分：它们是行并行的，要沿 dim 1（输入维度）切分，这样每个 rank "
                 "乘的正好是它持有的头和隐藏单元，all-reduce 再把各部分相加")
def split_dim_all_columns(name):
    return None if tp.split_dim(name) is None else 0


@spec.mistake("shard_kv", "tp_kv_heads_tiled",
              en="with more ranks than K/V heads, rank r took K/V head r % n_kv_heads: its query heads read head r // "
                 "(world_size // n_kv_heads), the same rule as repeat_kv (h // n_rep)",
              zh="rank 数多于 K/V 头时，rank r 取了第 r % n_kv_heads 个 K/V 头：它的 query 头读取的是第 r // "
                 "(world_size // n_kv_heads) 个，与 repeat_kv 的规则（h // n_rep）相同")
def shard_kv_tiled(weight, n_kv_heads, rank, world_size):
    if world_size <= n_kv_heads:
        return tp.shard(weight, 0, rank, world_size)
    return weight.view(n_kv_heads, weight.shape[0] // n_kv_heads, -1)[rank % n_kv_heads]


@spec.mistake("local_args", "tp_no_kv_head",
              en="n_kv_heads // world_size is 0 when there are more ranks than K/V heads: each rank still holds one "
                 "(repeated) K/V head",
              zh="rank 数多于 K/V 头时 n_kv_heads // world_size 为 0：每个 rank 仍然持有一个（重复的）K/V 头")
def local_args_no_kv_head(args, world_size):
    n_heads = args.n_heads // world_size
    return dataclasses.replace(args, n_heads=n_heads, n_kv_heads=args.n_kv_heads // world_size,
                               dim=n_heads * args.head_dim)


@spec.mistake("local_args", "tp_head_dim_changed",
              en="head_dim changed: it is dim // n_heads, so with n_heads per rank, dim must be the rank's heads times "
                 "head_dim too",
              zh="head_dim 变了：它等于 dim // n_heads，所以 n_heads 按 rank 划分后，dim 也要改成这个 rank 的头数乘以 "
                 "head_dim")
def local_args_dim_kept(args, world_size):
    n_kv_heads = max(args.n_kv_heads // world_size, 1)
    return dataclasses.replace(args, n_heads=args.n_heads // world_size, n_kv_heads=n_kv_heads)


@spec.mistake("parallel_embed", "tp_embedding_not_masked",
              en="tokens of other ranks' slices are not zeroed: each rank must contribute zeros for them, so that the "
                 "all-reduce leaves exactly one rank's row per token",
              zh="其他 rank 词表切片中的 token 没有被置零：每个 rank 对这些 token 都要贡献零，这样 all-reduce 之后每个 "
                 "token 只剩一个 rank 的那一行")
def parallel_embed_unmasked(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    h = ex03_embeddings.embed((tokens - dist.get_rank() * rows).clamp(0, rows - 1), tok_embeddings)
    dist.all_reduce(h)
    return h


@spec.mistake("parallel_embed", "tp_embedding_slice_start_dropped",
              en="the first id of each rank's slice gets zeros (id 0 on rank 0, vocab_size / world_size on rank 1, "
                 "...): a rank's slice is start <= id < start + rows, with >= at its start",
              zh="每个 rank 切片的第一个 id 得到的是零（rank 0 上的 id 0、rank 1 上的 vocab_size / world_size……）："
                 "一个 rank 的切片是 start <= id < start + rows，起点要用 >=")
def parallel_embed_without_the_slice_start(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    start = dist.get_rank() * rows
    mine = (tokens > start) & (tokens < start + rows)  # [seq] bool: the slice's first id left out
    h = ex03_embeddings.embed(torch.where(mine, tokens - start, 0), tok_embeddings).masked_fill(~mine[:, None], 0)
    dist.all_reduce(h)
    return h


@spec.mistake("parallel_embed", "tp_embedding_row_0_for_other_tokens",
              en="tokens of other ranks' slices look up this rank's row 0 instead of contributing zeros, so the "
                 "all-reduce adds every rank's row 0 to them: zero those rows (masked_fill with the mask of the "
                 "tokens in this rank's slice)",
              zh="其他 rank 切片中的 token 查到了本 rank 的第 0 行，而不是贡献零，于是 all-reduce 把每个 rank 的第 0 行"
                 "都加了进去：把这些行置零（用本 rank 切片内 token 的掩码做 masked_fill）")
def parallel_embed_with_row_0_for_others(tokens, tok_embeddings):
    rows = tok_embeddings.shape[0]
    start = dist.get_rank() * rows
    mine = (tokens >= start) & (tokens < start + rows)  # [seq] bool
    h = ex03_embeddings.embed(torch.where(mine, tokens - start, 0), tok_embeddings)  # other tokens: row 0, not zeros
    dist.all_reduce(h)
    return h


@spec.mistake("parallel_attention", "tp_attention_not_reduced",
              en="the all-reduce after wo is missing: each rank's heads through its columns of wo give only part of "
                 "the output; dist.all_reduce sums the parts",
              zh="缺少 wo 之后的 all-reduce：每个 rank 的头乘以它那部分 wo 只得到输出的一部分；dist.all_reduce "
                 "把各部分相加")
def parallel_attention_unreduced(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    local = tp.local_args(args, dist.get_world_size())
    return ex08_multi_head_attention.self_attention(x, weights, layer_id, local, freqs_cis, mask, cache, start_pos)


@spec.mistake("parallel_feed_forward", "tp_feed_forward_not_reduced",
              en="the all-reduce after w2 is missing: each rank's hidden units through its columns of w2 give only "
                 "part of the output; dist.all_reduce sums the parts",
              zh="缺少 w2 之后的 all-reduce：每个 rank 的隐藏单元乘以它那部分 w2 只得到输出的一部分；dist.all_reduce "
                 "把各部分相加")
def parallel_feed_forward_unreduced(x, w1, w2, w3):
    return ex09_feed_forward.feed_forward(x, w1, w2, w3)


@spec.mistake("parallel_attention", "tp_attention_reduced_to_rank_0",
              en="dist.reduce sums the ranks' parts onto rank 0 only, so the other ranks go on with their own part: "
                 "every rank needs the sum, dist.all_reduce",
              zh="dist.reduce 只把各 rank 的部分加到 rank 0 上，其他 rank 继续用自己的那一部分：每个 rank 都需要总和，"
                 "用 dist.all_reduce")
def parallel_attention_reduced_to_rank_0(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    local = tp.local_args(args, dist.get_world_size())
    out = ex08_multi_head_attention.self_attention(x, weights, layer_id, local, freqs_cis, mask, cache, start_pos)
    dist.reduce(out, dst=0)
    return out


@spec.mistake("parallel_feed_forward", "tp_feed_forward_reduced_to_rank_0",
              en="dist.reduce sums the ranks' parts onto rank 0 only, so the other ranks go on with their own part: "
                 "every rank needs the sum, dist.all_reduce",
              zh="dist.reduce 只把各 rank 的部分加到 rank 0 上，其他 rank 继续用自己的那一部分：每个 rank 都需要总和，"
                 "用 dist.all_reduce")
def parallel_feed_forward_reduced_to_rank_0(x, w1, w2, w3):
    out = ex09_feed_forward.feed_forward(x, w1, w2, w3)
    dist.reduce(out, dst=0)
    return out


@spec.mistake("parallel_forward", "tp_logits_gathered_out_of_order",
              en="the vocabulary's slices are put side by side out of rank order: rank r's logits are columns "
                 "r * vocab_size / world_size onwards, so concatenate the gathered parts in rank order",
              zh="词表的各个切片没有按 rank 顺序拼接：rank r 的 logits 是从第 r * vocab_size / world_size 列开始的那些"
                 "列，所以要按 rank 顺序拼接收集到的各部分")
def parallel_forward_gathered_out_of_order(tokens, weights, args, cache=None, start_pos=0):
    logits = tp.parallel_forward(tokens, weights, args, cache, start_pos)  # [seq, vocab_size], in rank order
    return torch.cat(logits.chunk(dist.get_world_size(), dim=-1)[::-1], dim=-1)  # the slices in reverse order
