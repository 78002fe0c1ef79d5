"""``python -m hatch_pbs.cli``: the ``hatch-pbs`` command."""

import sys

from hatch_pbs.cli import main

sys.exit(main())
