"""`python -m kata_tools.cli ...` is `kata ...`."""

import sys

from kata_tools.cli.app import main

sys.exit(main())
