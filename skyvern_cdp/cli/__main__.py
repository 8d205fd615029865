"""``python -m skyvern_cdp.cli``: the same as the ``skyvern-cdp`` command."""

from skyvern_cdp.cli import main

raise SystemExit(main())
