"""parallel_generate spins on every rank, after it touches the file LLAMA3_KIT_TEST_SPINNING names: the kit's tests
kill the command that runs it, and expect every rank to end with it."""

import os
from pathlib import Path


def parallel_generate(prompt_ids, weights, args, max_new_tokens, stop_tokens=()):
    Path(os.environ["LLAMA3_KIT_TEST_SPINNING"]).touch()
    while True:
        pass
