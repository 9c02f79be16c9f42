"""model_args returns a dict of the fields where the ModelArgs dataclass is expected."""

import dataclasses

from solutions.ex02_checkpoint import model_args

_reference_model_args = model_args


def model_args(params):
    return dataclasses.asdict(_reference_model_args(params))
