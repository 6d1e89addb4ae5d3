"""Exceptions shared by every layer.

`InputError` is the one exception the command line turns into a one-line message and exit
code 2: raise it (with a sentence naming the file and the problem) for anything a user can
fix by giving other input. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a missing, empty, corrupt, truncated or inconsistent file or argument."""
