"""Complete-checkpoint markers and the resume fingerprint.

transformers' Trainer writes checkpoint-N/ file by file (model, optimizer, scheduler, RNG,
trainer_state.json) with no completion marker, so a kill during a save leaves a directory
that `get_last_checkpoint` would happily pick. tunepath writes MARKER after the Trainer's
save returns (on_save runs after _save_checkpoint) and resumes only from marked directories.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from advisor.textio import atomic_write_text

MARKER = "tunepath_complete.json"
RUN_FILE = "tunepath_run.json"
_CKPT = re.compile(r"^checkpoint-(\d+)$")  # transformers.trainer_utils.PREFIX_CHECKPOINT_DIR


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Temp file + fsync + rename (advisor.textio): the file is either the old or the new content, never half."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path, bool]]:
    """(step, dir, complete) for every checkpoint-N directory, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _CKPT.match(d.name)
        if m and d.is_dir():
            complete = (d / MARKER).is_file() and (d / "trainer_state.json").is_file()
            found.append((int(m.group(1)), d, complete))
    return sorted(found)


def newest_complete(output_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint whose save finished, or None."""
    done = [d for _, d, ok in checkpoints(output_dir) if ok]
    return done[-1] if done else None


def mark_complete(ckpt_dir: Path, step: int) -> None:
    """fsync what the Trainer wrote, then write the marker (so a power cut cannot leave a marked, empty file)."""
    for f in ckpt_dir.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    sizes = {f.relative_to(ckpt_dir).as_posix(): f.stat().st_size for f in sorted(ckpt_dir.rglob("*"))
             if f.is_file() and f.name != MARKER}
    write_json_atomic(ckpt_dir / MARKER, {"step": step, "sizes": sizes})


def check_intact(ckpt_dir: Path) -> None:
    """Refuse to resume from a checkpoint damaged after its save finished (a truncated copy, a file
    deleted by hand): every file the marker lists must still have its size, and trainer_state.json
    must parse. The Trainer would otherwise fail deep inside torch.load or json with a traceback."""
    from advisor.errors import UserError

    def damaged(what: str) -> UserError:
        return UserError(f"--resume: {ckpt_dir} was damaged after it was saved ({what}); delete that folder to "
                         "resume from the checkpoint before it, or pass --force without --resume to start over")

    parsed = {}
    for name in (MARKER, "trainer_state.json"):
        try:
            parsed[name] = json.loads((ckpt_dir / name).read_text())
        except (OSError, ValueError):
            raise damaged(f"{name} is not readable JSON") from None
    marker = parsed[MARKER] if isinstance(parsed[MARKER], dict) else {}
    for name, size in (marker.get("sizes") or {}).items():  # markers written before sizes were recorded: none
        f = ckpt_dir / name
        if not f.is_file():
            raise damaged(f"{name} is missing")
        if f.stat().st_size != size:
            raise damaged(f"{name} is {f.stat().st_size:,} bytes, was {size:,}")


def remove_incomplete(output_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written checkpoints so the Trainer neither rotates on nor writes into them."""
    gone = []
    for _, d, ok in checkpoints(output_dir):
        if not ok:
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences between two nested fingerprints: ['training.learning_rate: 0.001 -> 0.0002']."""
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        name = f"{prefix}{k}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff(a, b, name + ".")
        elif a != b:
            if isinstance(a, str) and len(str(a)) > 24:
                out.append(f"{name} changed")
            else:
                out.append(f"{name}: {a} -> {b}")
    return out
