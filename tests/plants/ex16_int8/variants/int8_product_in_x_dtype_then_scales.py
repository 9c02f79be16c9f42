"""int8_linear as the chapter's other form: the product with q converted to x's dtype, then each output scaled, on every
device (no int8 kernel)."""

import torch.nn.functional as F


def int8_linear(x, w):
    return F.linear(x, w.q.to(x.dtype)) * w.scale.to(x.dtype)
