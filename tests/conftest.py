"""Fixtures shared by several test modules: how a missing oracle tool is reported.

A missing tool (xylosim, the exporting frameworks) skips its tests, except under
NIRC_REQUIRE_ORACLES=1 (CI), where it fails them. The check lives in fixtures
rather than at module level, so that a run deselecting those tests never
collects a failure.
"""

from __future__ import annotations

import importlib
import os

import pytest


def _skip_or_fail(what: str) -> None:
    if os.environ.get("NIRC_REQUIRE_ORACLES") == "1":
        pytest.fail(f"NIRC_REQUIRE_ORACLES=1 but {what}")
    pytest.skip(f"{what} (set NIRC_REQUIRE_ORACLES=1 to make this a failure)")


@pytest.fixture(scope="session")
def missing_oracle():
    """Call with a description of what is missing: skips, or fails under NIRC_REQUIRE_ORACLES=1."""
    return _skip_or_fail


@pytest.fixture(scope="session")
def xylosim_v2():
    """SynSense's xylosim.v2 (skipped when missing, a failure under NIRC_REQUIRE_ORACLES=1)."""
    try:
        return importlib.import_module("xylosim.v2")
    except ImportError as missing:
        _skip_or_fail(f"xylosim is not installed: {missing}")
