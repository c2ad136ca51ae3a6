"""Run the real `tunepath` CLI in-process (CliRunner) or in a subprocess (exit codes, imports)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"   # small licensed slices (tests/data/SOURCES.md)
EXAMPLES = REPO / "examples"


def cli(*args: str, env: dict | None = None):
    """Invoke `tunepath ARGS...` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from tunepath.cli import app

    runner = CliRunner()
    return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def cli_subprocess(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None):
    """Run `python -m tunepath.cli ARGS...` in a fresh interpreter, as a user's shell would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("TUNEPATH_DEBUG", None)
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "tunepath.cli", *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=cwd or REPO)


def one_line_error(res, *needles):
    """A user mistake: exit 2 and one line on stderr, starting 'error:' and containing every needle."""
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def assert_shared(root: Path) -> None:
    """Every file and folder under `root` is readable by others (folders enterable): a saved model colleagues can load."""
    import stat

    def ok(p: Path) -> bool:
        mode = stat.S_IMODE(p.stat().st_mode)
        need = stat.S_IRGRP | stat.S_IROTH | ((stat.S_IXGRP | stat.S_IXOTH) if p.is_dir() else 0)
        return mode & need == need and not mode & stat.S_IWOTH

    bad = {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [root, *root.rglob("*")] if not ok(p)}
    assert not bad, bad
