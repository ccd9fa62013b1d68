"""The sync engine and `SessionLocal`, for scripts, the CLI and background jobs."""

from __future__ import annotations
