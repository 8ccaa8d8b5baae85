import sys

from synscale.orchestration.run import main

sys.exit(main())
