"""What ``verbose=1`` prints: skorch's per-epoch table, readable anywhere.

Two small pieces on top of skorch's logging: :class:`EpochLog` colours the best
values only when the table goes to a terminal, and :class:`OrderNames` puts the
epoch's training order into the history by modality name.
"""

from __future__ import annotations

import os
import sys

from skorch.callbacks import Callback, PrintLog


def _prints_to_terminal(sink) -> bool:
    """Whether ``sink`` writes to stdout and stdout is an interactive terminal.

    ``NO_COLOR`` (https://no-color.org) switches colours off everywhere.
    """
    if os.environ.get("NO_COLOR"):
        return False
    if getattr(sink, "__name__", None) != "print":  # print, accelerator.print
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


class EpochLog(PrintLog):
    """skorch's :class:`~skorch.callbacks.PrintLog` without ANSI colour codes
    off a terminal (pipes, files, CI logs, notebooks' captured output).

    On a terminal the best value of each loss is coloured, as in skorch.
    """

    def format_row(self, row, key, color):
        """Format one cell; uncoloured unless printing to a terminal."""
        if not _prints_to_terminal(self.sink):
            row = {k: v for k, v in row.items() if k != f"{key}_best"}
            color = ""
        return super().format_row(row, key, color)


class OrderNames(Callback):
    """Records the epoch's training order by name, for the log.

    Reads the ``train_order`` entry of the epoch (indices into ``modalities``,
    written by the scheduler) and records ``order``, e.g.
    ``"visual>audio"`` (weakest first). Does nothing for estimators that do not
    record a training order.

    Parameters
    ----------
    modalities : list of str
        Modality names in declaration order.
    """

    def __init__(self, modalities):
        self.modalities = modalities

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if "train_order" in row:
            names = [self.modalities[i] for i in row["train_order"]]
            net.history.record("order", ">".join(names))
