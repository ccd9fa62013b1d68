"""The API's documentation pages, served with their assets by the app itself."""

from __future__ import annotations

from fastapi import FastAPI


def install_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and the redirect from / to /docs."""
