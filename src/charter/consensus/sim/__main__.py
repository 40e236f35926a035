"""``python -m charter.consensus.sim``: run many seeds, shrink and print each failure."""

from charter.consensus.sim.cli import main

main()
