"""``python -m adapters.cli``: the same as the ``wfk`` command."""

import sys

from adapters.cli import main

sys.exit(main())
