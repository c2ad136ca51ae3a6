"""Small shared helpers: human-readable numbers, reading users' text files, atomic file writes."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path


def human(x: float) -> str:
    """1.2M, 350K, 12 - three significant digits."""
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def usd(x: float | None) -> str:
    """$1,234 for amounts from $10, cents below, $1.23M from a million."""
    if x is None:
        return "-"
    if abs(x) < 0.005:
        return "$0"
    if abs(x) >= 1e6:
        return f"${x / 1e6:,.2f}M"
    return f"${x:,.0f}" if abs(x) >= 10 else f"${x:,.2f}"


def days_past(days: float, limit: float) -> str:
    """`days` (> `limit`) as text that visibly exceeds `limit`: '~7.0 days' beside a 7-day deadline read as
    on time, so a miss of under a day is told in hours ('7 days and 2 hours')."""
    text = f"{days:,.{1 if days < 100 else 0}f}"
    if float(text.replace(",", "")) > limit:
        return f"~{text} days"
    hours = max(1, math.ceil((days - limit) * 24))
    return f"{limit:g} days and {hours} hour{'s' if hours > 1 else ''}"


def days_over(excess: float) -> str:
    """How far past a deadline: '5 hours' under a day (never '0.0 days'), else '2.5 days'."""
    if excess < 1:
        hours = max(1, math.ceil(excess * 24))
        return f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{excess:,.1f} days"


def read_user_text(path: str | os.PathLike, what: str) -> str:
    """A user's UTF-8 text file, a leading byte-order mark dropped (Windows editors write one; Python's
    "utf-8-sig" codec), or one UserError line naming the file and what was expected in it."""
    from advisor.errors import UserError

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path}: is a folder, expected {what}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or type(e).__name__}); expected {what}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); expected {what}") from None


def check_output_dir(path: str | os.PathLike, field: str) -> Path:
    """`path` as a folder that can be created or written, or one UserError line naming `field`: an empty
    path (it would be the current folder), a file where the folder or one of its parents should be, or a
    parent the user cannot write. Checked before any work, so a long run does not fail at its first save."""
    from advisor.errors import UserError

    if not str(path).strip():
        raise UserError(f"{field}: empty; expected a folder path")
    p = Path(path).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise UserError(f"{field} {path}: exists and is not a folder")
    existing = next(a for a in (p, *p.parents) if a.exists())
    if not existing.is_dir():
        raise UserError(f"{field} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{field} {path}: {existing} is not writable")
    return p


def atomic_write_text(path: str | os.PathLike, text: str, mode: int = 0o644) -> Path:
    """Temp file in the same folder + fsync + rename: readers see the old file or the new one, never half.

    The file gets `mode` (default 0644: reports, run summaries and configs are meant to be shared);
    mkstemp alone would leave the 0600 of a private temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def share_tree(root: str | os.PathLike) -> Path:
    """Files under `root` 0644, folders (root included) 0755: what a model folder should be for colleagues.

    safetensors (0.8) writes every .safetensors file 0600 whatever the umask, and tempfile.mkdtemp makes
    0700 folders, so a saved model, adapter or tokenizer was readable by its owner only."""
    root = Path(root)
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        if p.is_dir():
            os.chmod(p, 0o755)
        elif p.is_file():
            os.chmod(p, 0o644)
    return root
