"""transformer_block is killed with SIGKILL, as Linux's out-of-memory killer kills: its test fails, saying so."""

import os
import signal


def transformer_block(x, weights, layer_id, args, freqs_cis, mask, cache=None, start_pos=0):
    os.kill(os.getpid(), signal.SIGKILL)
