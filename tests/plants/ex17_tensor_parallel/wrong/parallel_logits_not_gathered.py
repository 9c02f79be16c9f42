"""parallel_forward returns only this rank's slice of the vocabulary's logits, never gathered from the others."""

import torch.distributed as dist

from solutions.ex17_tensor_parallel import parallel_forward

FAILURE_SAYS = "columns: shape [17, 256], expected [17, 511]"

_reference_parallel_forward = parallel_forward


def parallel_forward(tokens, weights, args, cache=None, start_pos=0):
    full = _reference_parallel_forward(tokens, weights, args, cache, start_pos)
    width = full.shape[-1] // dist.get_world_size()
    return full[:, dist.get_rank() * width:(dist.get_rank() + 1) * width]
