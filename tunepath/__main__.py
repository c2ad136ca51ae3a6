"""`python -m tunepath` = `tunepath` (also what torchrun / accelerate launch run: `-m tunepath train CONFIG`)."""
from tunepath.cli import main

main()
