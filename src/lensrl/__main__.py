"""`python -m lensrl ...` is the same as the `lensrl` command."""

from lensrl.cli import main

raise SystemExit(main())
