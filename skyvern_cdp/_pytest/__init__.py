"""The parts of :mod:`skyvern_cdp.pytest_plugin`: options, the ledger, the active plugin."""
