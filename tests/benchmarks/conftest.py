"""What the benchmarks' smoke tests share: wrk, the load generator they drive dmed with."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture
def wrk() -> str:
    """wrk's path. Without it the test is skipped, unless DMED_REQUIRE_BROWSER (as in CI, which
    installs it) makes it fail."""
    path = shutil.which("wrk")
    if path is None:
        if os.environ.get("DMED_REQUIRE_BROWSER"):
            pytest.fail("wrk is not installed (apt-get install wrk); DMED_REQUIRE_BROWSER says it must run")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return path
