"""``python -m citymap_lightning``."""

import sys

try:  # importing torch and Lightning takes seconds: Ctrl-C then ends quietly too
    from citymap_lightning.cli import main
except KeyboardInterrupt:
    print("interrupted by SIGINT", file=sys.stderr)
    sys.exit(130)

main()
