"""special_tokens spins, after it touches the file LLAMA3_KIT_TEST_SPINNING names: the kit's tests stop or kill the
command that grades it, and expect every process of it to end."""

import os
from pathlib import Path


def special_tokens(n_base=128000):
    Path(os.environ["LLAMA3_KIT_TEST_SPINNING"]).touch()
    while True:
        pass
