"""`python -m watcherd` runs the same command line as the `watcherd` script."""

from __future__ import annotations

from watcherd.cli import main

raise SystemExit(main())
