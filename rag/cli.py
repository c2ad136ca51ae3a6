"""`tunepath rag ...` commands. Heavy libraries are imported inside each command."""
import typer

app = typer.Typer(help="Build, query and evaluate a retrieval index (sentence-transformers + FAISS).", no_args_is_help=True)
