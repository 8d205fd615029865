"""pytest plugin: Skyvern browser sessions as fixtures (work in progress)."""

from __future__ import annotations
