"""``python -m synscale``: the ``synscale`` command (synscale.orchestration.cli)."""
import sys

from synscale.orchestration.cli import main

sys.exit(main())
