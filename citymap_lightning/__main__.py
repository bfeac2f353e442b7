"""``python -m citymap_lightning``: the command line is checked before torch and Lightning are imported."""

import sys

try:
    from citymap_lightning.options import refuse_early

    if (status := refuse_early(sys.argv[1:])) is not None:  # a typo is refused at once, not after seconds of imports
        sys.exit(status)
    from citymap_lightning.cli import main  # importing torch and Lightning takes seconds: Ctrl-C then ends quietly too
except KeyboardInterrupt:
    print("interrupted by SIGINT", file=sys.stderr)
    sys.exit(130)

main()
