"""Exercise 17 graded tests: tensor parallelism. Run: pytest exercises/ -k ex17

The parallel functions run on 1, 2 and 4 ranks: as many processes on this machine, in one torch.distributed group
(gloo), started once and closed at the end of this file's tests."""

import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import PROMPT42_IDS, close_ranks, expect_equal, golden_case, own_generation_on_ranks, randn


@pytest.fixture(scope="module", autouse=True)
def ranks_closed_at_the_end():
    yield
    close_ranks()


@pytest.mark.goldens("split_dim")
def test_split_dim(impl, golden):
    golden.check(impl.split_dim)


@pytest.mark.goldens("shard")
def test_shard(impl, golden):
    golden.check(impl.shard)


@pytest.mark.goldens("shard_kv")
def test_shard_kv(impl, golden):
    golden.check(impl.shard_kv)


@pytest.mark.goldens("shard_weights")
def test_shard_weights(impl, golden):
    golden.check(impl.shard_weights)


@pytest.mark.goldens("local_args")
def test_local_args(impl, golden):
    golden.check(impl.local_args)


@pytest.mark.goldens("parallel_embed")
def test_parallel_embed(impl, golden):
    golden.check(impl.parallel_embed)


@pytest.mark.goldens("parallel_attention")
def test_parallel_attention(impl, golden):
    golden.check(impl.parallel_attention)


@pytest.mark.goldens("parallel_feed_forward")
def test_parallel_feed_forward(impl, golden):
    golden.check(impl.parallel_feed_forward)


@pytest.mark.goldens("parallel_forward")
def test_parallel_forward(impl, golden):
    golden.check(impl.parallel_forward)


@pytest.mark.goldens("parallel_generate")
def test_parallel_generate(impl, golden):
    golden.check(impl.parallel_generate)


@given(seed=st.integers(0, 2**31), dim=st.sampled_from([0, 1]), world_size=st.sampled_from([1, 2, 3, 4, 8]),
       rows=st.integers(1, 3), cols=st.integers(1, 3))
def test_the_shards_of_every_rank_put_back_together_give_the_weight(impl, seed, dim, world_size, rows, cols):
    weight = randn(seed, rows * (world_size if dim == 0 else 1), cols * (world_size if dim == 1 else 1))
    parts = [impl.shard(weight, dim, rank, world_size) for rank in range(world_size)]
    expect_equal("torch.cat(shards, dim) == weight", torch.equal(torch.cat(parts, dim), weight), True,
                 why=f"rank r holds the r-th of {world_size} equal slices along dim {dim}, in rank order")
    expect_equal("every shard contiguous", all(p.is_contiguous() for p in parts), True)


@given(seed=st.integers(0, 2**31), n_kv_heads=st.sampled_from([1, 2, 4, 8]), world_size=st.sampled_from([1, 2, 4, 8]),
       n_rep=st.sampled_from([1, 2, 4]))
def test_every_rank_holds_the_kv_heads_its_query_heads_read(impl, seed, n_kv_heads, world_size, n_rep):
    """Query head h reads K/V head h // n_rep: rank r's query heads are r * n_heads / world_size onwards."""
    n_heads, head_dim = n_kv_heads * n_rep, 2
    if n_heads % world_size:
        return  # the query heads do not split over these ranks
    weight = randn(seed, n_kv_heads * head_dim, 3)  # wk [n_kv_heads * head_dim, dim]
    for rank in range(world_size):
        local = n_heads // world_size
        needed = sorted({h // n_rep for h in range(rank * local, (rank + 1) * local)})  # the K/V heads they read
        if world_size <= n_kv_heads:
            needed = list(range(rank * n_kv_heads // world_size, (rank + 1) * n_kv_heads // world_size))
        expected = weight.view(n_kv_heads, head_dim, 3)[needed].reshape(-1, 3)
        got = impl.shard_kv(weight, n_kv_heads, rank, world_size)
        expect_equal(f"rank {rank} of {world_size}: the K/V heads it holds "
                     f"(n_kv_heads {n_kv_heads}, n_heads {n_heads})",
                     isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.equal(got, expected), True,
                     why=f"rank {rank}'s query heads read K/V head(s) {needed}")


@pytest.mark.parametrize("world_size", [2, 4])
def test_your_own_sharding_and_generation_give_the_single_process_tokens(chain, world_size):
    """Your shard_weights and parallel_generate (and everything they call of yours) on 2 and 4 ranks: the greedy
    tokens of exercise 12's generate in one process."""
    expected = golden_case("tiny-llama3", "ex12_generation", "generate", "prompt42").expected["tokens"]
    tokens = chain.run(own_generation_on_ranks, chain.ex17_tensor_parallel.parallel_generate, world_size, "tiny-llama3",
                       PROMPT42_IDS, len(expected))
    for rank, got in enumerate(tokens):
        expect_equal(f"rank {rank}'s tokens", got, expected)
