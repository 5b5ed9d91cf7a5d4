"""Shared fixtures for the pytest suites: the caskfs binary and helpers to run it."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def caskfs_bin():
    path = pathlib.Path(os.environ.get("CASKFS_BIN", ROOT / "build" / "caskfs"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"caskfs binary not found at {path}: run 'make' first")
    return str(path)


@pytest.fixture
def run(caskfs_bin):
    """run(*args, input=bytes) -> CompletedProcess with bytes stdout/stderr."""

    def _run(*args, input=None, timeout=60):
        return subprocess.run([caskfs_bin, *map(str, args)], input=input,
                              capture_output=True, timeout=timeout)

    return _run
