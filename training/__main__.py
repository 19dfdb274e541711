"""``python -m training``: the same as the ``augsvc-train`` command."""

import sys

from training.cli import main

sys.exit(main())
