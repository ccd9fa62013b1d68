"""Debian packages a test needs (chromium, docker-compose), installed by the test itself.

The project's machines start without them and nothing installed by hand survives, so a test that
needs one installs it with apt-get the first time. Under CI=true a package that cannot be
installed fails the test; elsewhere (no root, no network) it is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import in_ci

_updated = False


def ensure_command(command: str, package: str) -> Path:
    """The path of `command`, installing Debian's `package` first when it is missing."""
    found = shutil.which(command)
    if found is None:
        problem = _install(package)
        found = shutil.which(command)
        if found is None:
            message = f"{command} is missing and `apt-get install {package}` did not provide it: {problem}"
            if in_ci():
                pytest.fail(message)
            pytest.skip(message)
    return Path(found)


def _install(package: str) -> str:
    global _updated  # noqa: PLW0603 -- one `apt-get update` per test session
    if shutil.which("apt-get") is None:
        return "this machine has no apt-get"
    if os.geteuid() != 0:
        return "installing needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]]
    if not _updated:
        steps.insert(0, ["apt-get", "update", "-qq"])
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, env=env, check=False, timeout=900)  # noqa: S603
        if result.returncode != 0:
            return f"`{' '.join(step)}` failed: {result.stderr.strip()[-500:]}"
        _updated = _updated or step[1] == "update"
    return "installed"
