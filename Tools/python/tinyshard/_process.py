"""Which process an object was opened in, without a system call per check.

Objects that map files (ImageStore, SoftLabels) must map them again in a forked child (a DataLoader
worker). `os.getpid()` is a system call, and they check on every read; instead a counter is bumped in
every forked child and an object compares the counter it saw when it opened."""

import os

_generation = 0


def _forked():
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def generation():
    """Changes in a forked child; constant within one process."""
    return _generation
