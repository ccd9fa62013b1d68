"""Tests that drive a real browser (Debian's Chromium) against the app served by uvicorn."""
