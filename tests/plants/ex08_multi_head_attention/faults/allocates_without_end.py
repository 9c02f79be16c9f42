"""repeat_kv allocates 1 GB after 1 GB and keeps them all (torch.empty: the address space runs out before any memory is
touched): under the memory limit an allocation fails at its line."""

import torch


def repeat_kv(x, n_rep):
    kept = []
    while True:
        kept.append(torch.empty(2**28))
