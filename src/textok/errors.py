"""Error types for faults the user can fix (docs/reliability.md).

The CLI prints any of them as one line naming the file or option and exits 2; the library raises
them like any exception. ``TextokError`` is a ``ValueError`` so older ``except ValueError``
callers keep working.
"""

from __future__ import annotations


class TextokError(ValueError):
    """A fault the user can fix (a bad file, option or folder); the message names it."""


class FolderLockedError(TextokError):
    """Another process owns the folder (see ``textok.io.FolderLock``)."""


__all__ = ["TextokError", "FolderLockedError"]
