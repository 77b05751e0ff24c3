"""The emulator harness itself: its install command, its interpreter lookup, its lifetime."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from .fixtures import emulator as em

ROOT = Path(__file__).resolve().parent.parent


def test_install_command_is_a_quick_no_op_once_cached(bigquery_emulator: em.Emulator) -> None:
    """The session fixture installed it already; the command only finds it again."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.emulator", "install"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    venv = Path(proc.stdout.strip())
    assert venv == em.cache_dir() / "venv"
    assert (venv / "bin" / "local-bigquery").is_file()
    assert "building" not in proc.stderr
    links = sorted((em.cache_dir() / "home" / ".duckdb" / "extensions").rglob("*.duckdb_extension"))
    assert [p.name for p in links] == [f"{e}.duckdb_extension" for e in sorted(em.EXTENSIONS)]
    assert all(p.resolve().is_file() for p in links)


def test_cache_key_changes_with_the_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    before = em.cache_dir()
    monkeypatch.setattr(em, "DUCKDB_PINS", (*em.DUCKDB_PINS, "something==1"))
    assert em.cache_dir() != before
    assert em.cache_dir().parent == before.parent


def test_explicit_python_that_does_not_exist_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SMOLQWERY_TEST_PY313", str(tmp_path / "python3.13"))
    with pytest.raises(em.EmulatorUnavailable, match="SMOLQWERY_TEST_PY313"):
        em.find_python313()


def test_found_python_is_3_13() -> None:
    python = em.find_python313()
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "(3, 13)"


def test_emulator_listens_on_loopback_only(bigquery_emulator: em.Emulator) -> None:
    assert bigquery_emulator.endpoint.startswith("http://127.0.0.1:")
    url = f"{bigquery_emulator.endpoint}/bigquery/v2/projects/{bigquery_emulator.project}/datasets"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200


@pytest.mark.slow
def test_no_emulator_outlives_a_killed_test_process(tmp_path: Path) -> None:
    """Even a SIGKILLed session (no atexit, no fixture teardown) leaves no emulator behind."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from tests.fixtures import emulator as em
        e = em.start(em.install(), Path({str(tmp_path)!r}))
        print(e.process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # Reap it if it became our zombie; otherwise it was re-parented and exits on its own.
        time.sleep(0.1)
    else:
        os.killpg(child, signal.SIGKILL)
        pytest.fail("the emulator survived its test process")
