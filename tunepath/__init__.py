"""tunepath's product shell: the `tunepath` command line, the launcher behind `tunepath run` and
the calibration micro-run. It sits on top of everything: it imports advisor/, rag/, training/ and
adapters/ (the backends lazily, inside the commands that need them); nothing imports it."""
from __future__ import annotations


def version() -> str:
    """The installed distribution's version (package metadata), or 'unknown' from a bare checkout."""
    from importlib import metadata

    try:
        return metadata.version("tunepath")
    except metadata.PackageNotFoundError:
        return "unknown"
