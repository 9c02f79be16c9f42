"""Every layer's map from its right input, but normed with layer 0's attention_norm."""

from solutions.ex15_experiments import attention_probs

FAILURE_SAYS = "attention_probs (tiny-llama3, prompt42_layer1) does not match the reference"

_reference_attention_probs = attention_probs


def attention_probs(tokens, weights, args, layer_id):
    norm = f"layers.{layer_id}.attention_norm.weight"
    return _reference_attention_probs(tokens, {**weights, norm: weights["layers.0.attention_norm.weight"]}, args,
                                      layer_id)
