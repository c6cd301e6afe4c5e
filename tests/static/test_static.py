"""The code's own checks run with the tests, so CI enforces them: ruff (its rules and the line length) and
mypy (strict on the pure core: core/, match/, parsers/; the default elsewhere)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          check=False)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", "src", "parsers", "flows", "tests", "bench")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _package_tree(root: Path) -> Path:
    """The package as it is installed (parsers/ and flows/ inside reconcile), as links, for mypy to read."""
    package = root / "reconcile"
    package.mkdir()
    for item in (REPO / "src" / "reconcile").iterdir():
        (package / item.name).symlink_to(item)
    for name in ("parsers", "flows"):
        (package / name).symlink_to(REPO / name)
    return root


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    tree = _package_tree(tmp_path)
    done = _run("mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(tmp_path / ".cache"),
                "-p", "reconcile", cwd=tree)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
