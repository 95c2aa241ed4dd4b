"""`python -m lib.migration`: the same as `cs-import`."""

import sys

from lib.migration.command import main

sys.exit(main())
