"""``python -m citymap_lightning``."""

from citymap_lightning.cli import main

main()
