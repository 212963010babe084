"""``python -m sohoa.cli`` = the ``sohoa`` command."""

import sys

from sohoa.cli import main

sys.exit(main())
