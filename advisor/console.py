"""Rich consoles for the CLI shell: results on stdout, diagnostics on stderr."""
from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
