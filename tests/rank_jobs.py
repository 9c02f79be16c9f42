"""Jobs and functions for tests/test_ranks.py: each runs on every rank of a group (grader/engine/ranks.py)."""

import os
import time

import torch
import torch.distributed as dist


def call(fn, x):
    """The job: fn(x) on every rank."""
    return fn(x)


def summed(x):
    out = x * (dist.get_rank() + 1)
    dist.all_reduce(out)
    return {"sum": out, "rank": dist.get_rank(), "world_size": dist.get_world_size()}


def raises_on_rank_1(x):
    if dist.get_rank() == 1:
        raise ValueError("rank one gives up")
    return summed(x)


def all_reduce_on_rank_0_only(x):
    out = x.clone()
    if dist.get_rank() == 0:
        dist.all_reduce(out)
    return out


def dies_on_rank_1(x):
    if dist.get_rank() == 1:
        os._exit(3)
    return summed(x)


def loops_on_rank_1(x):
    while dist.get_rank() == 1:
        time.sleep(0.01)
    return summed(x)


def loops(x):
    while True:
        time.sleep(0.01)


def reduces_its_input(x):
    dist.all_reduce(x)
    return x


def pid(x):
    return torch.tensor(os.getpid())


def not_started(x):
    """A stub, as the exercises ship."""
    raise NotImplementedError("not started: implement not_started in tests/rank_jobs.py")


def parallel_embed_on_rank_0_only(tokens, tok_embeddings):
    """A vocab-parallel embedding whose all-reduce only rank 0 calls: rank 0 waits for the others in vain."""
    h = tok_embeddings[tokens.clamp(max=tok_embeddings.shape[0] - 1)]
    if dist.get_rank() == 0:
        dist.all_reduce(h)
    return h
