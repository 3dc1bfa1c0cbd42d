"""`python -m air_quality_stream`: the `air-quality` command without installing it."""

import sys

from air_quality_stream.cli import main

sys.exit(main())
