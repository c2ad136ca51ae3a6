"""Rich consoles for the CLI shell: results on stdout, diagnostics on stderr."""
import os
import sys

from rich.console import Console

# `tunepath rules --json | head -1`: the reader closed the pipe. Not a bug - stop quietly with the status a
# shell gives a Unix tool stopped by SIGPIPE (128 + 13). Python ignores SIGPIPE, so the write raises
# BrokenPipeError instead; the rest of the output goes to /dev/null so that the exit flush cannot fail again
# (Python docs, signal module, "Note on SIGPIPE").
EXIT_BROKEN_PIPE = 141


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on its write end)."""
    import select

    if not hasattr(select, "poll"):   # Windows: no poll on pipes; assume the error came from stdout
        return True
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):   # stdout closed or replaced by an object without a file descriptor
        return False


def stop_on_broken_pipe() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_BROKEN_PIPE)


class _Console(Console):
    def on_broken_pipe(self) -> None:   # rich's own handler exits 1, which tunepath reserves for bugs
        self.quiet = True
        stop_on_broken_pipe()


out = _Console(highlight=False)
err = _Console(stderr=True, highlight=False)
