"""`make test` runs on every core: a module's shared fixture (a stack, a SAM build) is made once, on one worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from ..conftest import ROOT

SHARING = textwrap.dedent("""
    import os
    import pytest

    @pytest.fixture(scope="module")
    def made(tmp_path_factory):
        with open(os.environ["MADE_LOG"], "a") as log:
            log.write(os.environ.get("PYTEST_XDIST_WORKER", "-") + "\\n")
        return True

    @pytest.mark.parametrize("n", range(6))
    def test_shares_it(made, n):
        assert made

    @pytest.mark.parametrize("n", range(6))
    def test_alone(n):
        pass
""")


def test_a_modules_shared_fixture_is_made_once_under_xdist(tmp_path):
    (tmp_path / "test_sharing.py").write_text(SHARING)
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n")
    log = tmp_path / "made.log"
    env = {**os.environ, "MADE_LOG": str(log), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-n", "2", "--dist", "loadgroup", "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "12 passed" in done.stdout
    assert len(log.read_text().splitlines()) == 1  # one worker, once: the group held together
