"""int8_linear by dequantizing first (q * scale in float32), then one product in x's dtype."""

from solutions.ex16_int8 import dequantize


def int8_linear(x, w):
    return x @ dequantize(w).to(x.dtype).T
