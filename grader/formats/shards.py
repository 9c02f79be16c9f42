"""Checkpoints split for tensor parallelism, as Meta ships Llama 3 70B (consolidated.00.pth .. consolidated.07.pth), and
the rank counts a model splits over.

Each file holds one rank's share in Meta's model-parallel layout, the layout of exercise 17 (solutions' split_dim and
shard_weights, used here so that the rule lives in one place): wq, wk, wv, w1, w3, tok_embeddings and output cut
along dim 0, wo and w2 along dim 1, the norms whole in every file; with more files than K/V heads, each K/V head is
repeated in consecutive files. checkpoint.py reads and checks the files (Merged: one model, a tensor concatenated
only when it is asked for); reshard() gives rank r of any rank count its share, straight from the files when the
counts agree; save() writes them."""

from collections.abc import Mapping
from pathlib import Path

import torch

from . import checkpoint
from ..errors import KitError
from ..i18n import say


def rank_counts(args, largest: int = 8) -> list[int]:
    """The numbers of ranks up to largest that Meta's layout splits this model over evenly: the query heads, the K/V
    heads (or each K/V head over several ranks), the hidden units and the vocabulary."""
    return [n for n in range(1, largest + 1)
            if args.n_heads % n == 0 and (args.n_kv_heads % n == 0 or n % args.n_kv_heads == 0)
            and args.hidden_dim % n == 0 and args.vocab_size % n == 0]


def check_rank_count(args, n: int, what: str = "this model", option: str = "--ranks") -> None:
    """A KitError, saying which counts work, unless n ranks split the model evenly."""
    if n < 1:
        raise KitError(say("formats.shards.at_least_one", option=option, n=n,
                           works=", ".join(map(str, rank_counts(args)))))
    if n not in rank_counts(args, n):
        works = ", ".join(map(str, rank_counts(args, max(8, n))))
        raise KitError(f"{what} does not split over {n} ranks ({args.n_heads} heads, {args.n_kv_heads} K/V heads, "
                       f"hidden size {args.hidden_dim}, vocabulary {args.vocab_size}): use {option} {works}")


def _layout():
    from solutions import ex17_tensor_parallel

    return ex17_tensor_parallel


def reshard(shards: list[Mapping[str, torch.Tensor]], args, rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """Rank's share for world_size ranks of a model stored as len(shards) shares: the file itself (memory-mapped)
    when the counts are equal, else cut from the merged tensors one at a time (copies of this rank's share only)."""
    if world_size == len(shards):
        return dict(shards[rank])
    merged = checkpoint.Merged(shards, args)
    out = {}
    for name in merged:
        share = _layout().shard_weights({name: merged[name]}, args, rank, world_size)[name]
        out[name] = share if _layout().split_dim(name) is None else share.clone()  # not a view of the whole
    return out


def save(folder: Path, weights: Mapping[str, torch.Tensor], args, n: int) -> list[Path]:
    """Write weights as n files consolidated.00.pth .. in Meta's layout; each holds copies of its share only."""
    paths = []
    for rank in range(n):
        share = _layout().shard_weights(dict(weights), args, rank, n)
        path = folder / f"consolidated.{rank:02d}.pth"
        torch.save({name: t.clone() for name, t in share.items()}, path)  # a view would save the whole storage
        paths.append(path)
    return paths


def rank_share(folder: Path, rank: int, world_size: int) -> tuple:
    """(args, rank's share) of the checkpoint in folder, one file or many, for world_size ranks: memory-mapped where it
    can be (one file cut along dim 0, or as many files as ranks), copies of this rank's share only otherwise."""
    folder = Path(folder)
    if len(checkpoint.meta_shards(folder)) > 1:
        args = checkpoint.read_args(folder, "meta")
        files = checkpoint.read_shards(folder, args)
        for f in files:
            f.setdefault("output.weight", f.get("tok_embeddings.weight"))
        return args, reshard(files, args, rank, world_size)
    ck = checkpoint.load(folder)
    return ck.args, _layout().shard_weights(ck.weights, ck.args, rank, world_size)
