"""Errors PathViz raises for bad input.

Every error names the offending file or value and says how to fix it, so the CLI and the
dashboard can show the message as it is.
"""

from __future__ import annotations

from pathlib import Path


class PathVizError(Exception):
    """Base class: a problem with the user's input or workspace, with a suggested fix.

    Args:
        message: what is wrong.
        fix: how the user can fix it (shown after the message).
        path: the file concerned, if any.
    """

    def __init__(self, message: str, fix: str = "", path: str | Path | None = None):
        self.message = message
        self.fix = fix
        self.path = str(path) if path is not None else None
        text = message if not fix else f"{message} Fix: {fix}"
        super().__init__(text)


class SlideError(PathVizError):
    """A slide file cannot be opened or read (corrupt, truncated, unsupported, not an image)."""


class MissingMppError(SlideError):
    """The slide carries no microns-per-pixel metadata and none was declared."""


class SlideTooLargeError(SlideError):
    """A plain (non-pyramidal) image is too large to decode safely (decompression-bomb guard)."""


class EmptyTissueMaskError(PathVizError):
    """No tissue was found on the slide, so no tile grid can be built."""


class WorkspaceError(PathVizError):
    """A workspace operation was refused (path outside the allowed roots, unknown slide id...)."""


def closest_matches(value: str, candidates, n: int = 3) -> list[str]:
    """Up to ``n`` candidates closest to ``value`` (difflib ratio >= 0.5), best first, for
    "did you mean" fixes that never dump a whole list of ids."""
    import difflib

    cands = [str(c) for c in candidates]
    low = str(value).lower()
    prefix = sorted(c for c in cands if c.lower().startswith(low))[:n]  # e.g. a patient id typed for a slide id
    fuzzy = [c for c in difflib.get_close_matches(str(value), cands, n=n, cutoff=0.5) if c not in prefix]
    return (prefix + fuzzy)[:n]


def unknown_fix(kind: str, value: str, candidates, list_command: str) -> str:
    """The fix of an "unknown id" error: the closest ids (at most 3) and the command that lists all."""
    near = closest_matches(value, candidates)
    hint = f"did you mean {' or '.join(repr(c) for c in near)}? " if near else ""
    return f"{hint}List the {kind} with `{list_command}`."
