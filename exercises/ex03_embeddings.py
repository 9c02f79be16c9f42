"""Exercise 3: Embeddings.

The tokenizer gave us integers. A neural network needs vectors. The first layer of
Llama is a table with one learned vector per token id: tok_embeddings.weight, of
shape [vocab_size, dim] = [128256, 4096] for Llama 3 8B. Row i is the vector of token
i. Turning ids into vectors means picking rows out of that table, one per token, in
order.

Shapes
------
    tokens            [17]              int64, the prompt of exercise 1
    tok_embeddings    [128256, 4096]    bfloat16
    result            [17, 4096]        bfloat16: row s is tok_embeddings[tokens[s]]

This kit never has a batch dimension: one sequence at a time, so tokens are [seq] and
activations are [seq, dim] from here to the end. The 4096 numbers of a row are often
called the token's hidden state; the stack of rows, updated layer after layer, is the
residual stream (exercise 10).

A lookup is a matrix product in disguise
----------------------------------------
Write each token as a one-hot vector of length 128256 (a 1 at its id, 0 elsewhere).
The embedding is then one_hot @ tok_embeddings: [17, 128256] @ [128256, 4096] ->
[17, 4096]. That product is mathematically what an embedding layer is, and it is how
the gradient flows in training. But computing it would cost 17 x 128256 x 4096 = 9
billion multiply-adds to copy 17 rows. Indexing copies the 17 rows directly. In
PyTorch, a tensor of integer indices used as an index selects whole rows
(advanced indexing); torch.index_select and torch.nn.functional.embedding do the same.

Why there is no position here
-----------------------------
GPT-2 added a second learned vector for the position of each token. Llama does not:
at this stage the word "the" has the same vector at position 1 and position 10.
Position enters later, inside attention, by rotating queries and keys (RoPE,
exercise 6). That keeps the embedding table free of any maximum length.

Size and memory
---------------
The table holds 128256 x 4096 = 525,336,576 numbers, 6.5% of the 8B model, 1.05 GB in
bfloat16. Because the weights are memory-mapped (exercise 2), looking up 17 rows reads
only the few pages that hold them from disk. In Llama 3.2 1B and 3B the same matrix is
used again at the very end to turn hidden states back into scores over the vocabulary
("tied embeddings", exercise 11).

Dtype
-----
The result keeps the table's dtype: bfloat16 for a real checkpoint. Do not convert to
float32; the whole forward pass runs in the weights' dtype, with float32 used only
where the exercises say so (RMSNorm, RoPE, softmax, logits).

Where tensors live
------------------
A tensor lives on a device: the CPU, an NVIDIA GPU ("cuda") or the GPU of a Mac
("mps"). An operation wants its inputs on one device and puts its result there, so
embed has nothing to do: the rows come out where the table is. The kit runs your
code on the device you chose (--device, or LLAMA3_KIT_DEVICE; the CPU by default)
within torch.device(...), so a tensor you make without naming a device, such as
torch.tensor(ids) or torch.zeros(...), lands there as well. Naming one, device="cpu"
or a .cpu() in the middle of a computation, works on the CPU and fails on a GPU, and
the grader says so. Where a device must be named, follow an input, as Meta's code
does: device=x.device. On the CPU none of this changes anything.

Pitfalls
--------
- A one-hot matrix product: correct, but slow and memory-hungry.
- Indexing with a float tensor or a Python list of lists: the ids must be an integer
  tensor of shape [seq].
- Adding a batch dimension: the result is [seq, dim], not [1, seq, dim].
- Modifying the table in place: it is backed by the checkpoint file.

Run the tests: pytest exercises/ -k ex03
"""

import torch


def embed(tokens: torch.Tensor, tok_embeddings: torch.Tensor) -> torch.Tensor:
    """Look up one row of the embedding table per token.

    Args:
        tokens: [seq] int64 token ids, each in [0, vocab_size).
        tok_embeddings: [vocab_size, dim], the table tok_embeddings.weight
            ([128256, 4096] bfloat16 for 8B).

    Returns:
        [seq, dim] in the table's dtype: [17, 4096] bfloat16 for the prompt.

    Hints:
        - Indexing a tensor with an integer tensor picks rows.
        - No loop, no one-hot, no dtype conversion.
    """
    raise NotImplementedError("not started: implement embed in exercises/ex03_embeddings.py (exercise 3)")
