"""``python -m neuroplastic``: the ``neuroplastic`` command (see :mod:`neuroplastic.cli`)."""

import sys

from neuroplastic.cli import main

if __name__ == "__main__":  # also guards the re-import in the worker processes of `run --jobs N`
    sys.exit(main())
