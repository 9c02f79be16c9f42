"""Exercise 3, embeddings: golden calls."""

from ..engine.calls import Call, Ref
from .spec import Spec

spec = Spec("ex03_embeddings")


@spec.cases
def calls(model, acts) -> list[Call]:
    """Each prompt's token ids looked up in the embedding table."""
    return [Call("ex03_embeddings", "embed", name, {"tokens": a.tokens, "tok_embeddings": Ref("weight", "tok_embeddings.weight")})
            for name, a in acts.items()]
