"""A second checkout of this project, at a git ref, to serve beside the current one (`--compare REF`).

The ref is checked out detached in a temporary `git worktree` and served with the current `.venv`:
the same interpreter and dependency versions, only the project's own code differs. The worktree
goes when the run ends, however it ends.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ROOT

# What is served: a difference anywhere else (bench/, tests/, docs) does not change what is measured.
SERVED = ("app", "alembic.ini", "pyproject.toml", "uv.lock")


@dataclass(frozen=True, slots=True)
class Checkout:
    ref: str  # as given: a commit, HEAD~3, main
    commit: str
    subject: str
    path: Path
    shared_revisions: tuple[str, ...]  # migration files copied in from the current checkout

    @property
    def short(self) -> str:
        return self.commit[:7]


def _git(*args: str, cwd: Path = ROOT) -> str:
    # --no-optional-locks: a read must not refresh the index, which other people's edits share.
    completed = subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout.rstrip("\n")  # not strip(): a status line starts with a space


def describe_current() -> str:
    """The current checkout in one line: its commit, and whether what is served differs from it."""
    commit = _git("rev-parse", "--short", "HEAD")
    changed = [line[3:] for line in _git("status", "--porcelain", "--", *SERVED).splitlines()]
    if not changed:
        return f"the work tree at {commit}"
    listed = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    return f"the work tree at {commit} with uncommitted changes to {listed}"


def _versions(checkout: Path) -> Path | None:
    """A checkout's revision files: in the package since the wheel carries them, at the root before."""
    for versions in (checkout / "app" / "alembic" / "versions", checkout / "alembic" / "versions"):
        if versions.is_dir():
            return versions
    return None


def _share_migrations(path: Path) -> tuple[str, ...]:
    """Copy the current checkout's migrations the ref lacks into its versions/ folder.

    The harness migrates the benchmark database with the current code, so it may be at a revision
    the ref has never heard of, and the ref's startup refuses an unknown revision (it takes it for
    a database a newer release migrated). Knowing the newer revision files lets the ref start on
    the current schema, which is the point of an A/B run: both apps read the same tables. The ref's
    own files are never replaced; it still runs only its own code against that schema.
    """
    versions, current = _versions(path), _versions(ROOT)
    if versions is None or current is None:
        raise SystemExit(f"{path}: no app/alembic/versions/ (or alembic/versions/), not a checkout of this project")
    copied = []
    for source in sorted(current.glob("*.py")):
        target = versions / source.name
        if not target.exists():
            shutil.copy2(source, target)
            copied.append(source.name)
    return tuple(copied)


def resolve(ref: str) -> str:
    """The commit `ref` names; SystemExit when it names none."""
    completed = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"--compare {ref}: not a commit of this repository")
    return completed.stdout.strip()


@contextmanager
def worktree(ref: str) -> Iterator[Checkout]:
    """`ref` checked out detached in a temporary directory; removed on exit, also on Ctrl-C."""
    commit = resolve(ref)
    subject = _git("log", "-1", "--format=%s", commit)
    parent = Path(tempfile.mkdtemp(prefix="blogapi-bench-"))
    path = parent / f"ref-{commit[:7]}"
    try:
        _git("worktree", "add", "--detach", "--quiet", str(path), commit)
        yield Checkout(ref, commit, subject, path, _share_migrations(path))
    finally:
        # --force: the copied migrations are untracked files, which a plain remove refuses to lose.
        removed = subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True, check=False
        )
        shutil.rmtree(parent, ignore_errors=True)
        if removed.returncode != 0 and str(path) in _git("worktree", "list", "--porcelain"):
            print(f"the worktree {path} could not be unregistered: `git worktree prune` does it", flush=True)
