"""Exercise 3, embeddings: golden calls and named mistakes."""

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex03_embeddings")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Each prompt's token ids looked up in the embedding table."""
    table = Ref("weight", "tok_embeddings.weight")
    return [Call(spec.module, "embed", name, {"tokens": a.tokens, "tok_embeddings": table})
            for name, a in acts.items()]


@spec.mistake("embed", "embeddings_in_float32",
              en="the embeddings are float32: return the table's rows in the table's own dtype (bfloat16 for a real "
                 "checkpoint); RMSNorm upcasts where it matters, and a float32 stream doubles every activation's "
                 "memory",
              zh="嵌入是 float32：应按表本身的 dtype 返回这些行（真实检查点是 bfloat16）；RMSNorm "
                 "会在需要的地方升精度，float32 的残差流会让每个激活占用的内存翻倍")
def embed_in_float32(tokens, tok_embeddings):
    return tok_embeddings[tokens].float()
