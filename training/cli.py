"""`tunepath train / merge / generate`. torch and transformers are imported inside each command."""
import typer

app = typer.Typer()
