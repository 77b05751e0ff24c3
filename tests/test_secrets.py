"""The private key never shows: not in logs, errors, command output or tracebacks (issue 6).

A real-looking RSA key, generated for the test, is configured as
``SMOLQWERY_GOOGLE_PRIVATE_KEY``. The real command runs in a child process at every verbosity
(and with ``--traceback``), with every logger of the process — the libraries' too — sent to
stderr at DEBUG; then the ``ExportRun`` errors stored in the database are printed as well. No
40-character slice of the key, in any of the forms it could be printed in, may appear.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from smolqwery.errors import ConfigurationError
from smolqwery.settings import get_settings
from smolqwery.warehouses.bigquery_auth import bigquery_credentials
from tests.fixtures.crash import (
    EXTRACTORS,
    NO_AMBIENT_CREDENTIALS,
    ChildResult,
    Scenario,
    ScenarioFactory,
    credential_cases,
    fake_pem,
    google_key_settings,
)

SLICE = 40
VERBOSITIES = (["-v", "0"], ["-v", "1"], ["-v", "2"], ["-v", "3"], ["-v", "3", "--traceback"])
DEBUG_EVERYTHING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "level": "DEBUG"}},
    "root": {"handlers": ["stderr"], "level": "DEBUG"},
}


def key_slices(pem: str) -> set[str]:
    """Every 40-character slice of the key as text, as one line, and with escaped newlines."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    forms = {pem, body, pem.replace("\n", "\\n"), json.dumps(pem), repr(pem)}
    return {form[i : i + SLICE] for form in forms for i in range(len(form) - SLICE + 1)}


def leaks(text: str, slices: set[str]) -> list[str]:
    """The slices of the key found in ``text`` (empty when none)."""
    return sorted({text[i : i + SLICE] for i in range(len(text))} & slices)


def corrupted(pem: str) -> str:
    """The key with its body damaged: still looks like a key, no longer parses."""
    lines = pem.splitlines()
    middle = len(lines) // 2
    lines[middle] = lines[middle][::-1]
    lines[middle + 1] = "!" + lines[middle + 1][1:]
    return "\n".join(lines) + "\n"


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    """OAuth token endpoint: ``/ok`` grants a token, ``/refuse`` answers invalid_grant."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/ok":
            status = 200
            body = {"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"}
        else:
            status = 400
            body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def token_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def pem() -> str:
    return fake_pem()


def cases(emulator: Any, token_url: str, pem: str) -> dict[str, dict[str, Any]]:
    on_emulator = {"SMOLQWERY_BIGQUERY_API_ENDPOINT": emulator.endpoint}
    out = {
        "token granted, export runs": {
            **google_key_settings(pem, token_url + "/ok"),
            **on_emulator,
        },
        "token refused": {**google_key_settings(pem, token_url + "/refuse"), **on_emulator},
        "damaged key": {**google_key_settings(corrupted(pem), token_url + "/ok"), **on_emulator},
        "escaped newlines": {
            **google_key_settings(pem.replace("\n", "\\n"), token_url + "/refuse"),
            **on_emulator,
        },
    }
    unreachable = credential_cases(emulator.endpoint, pem)["token server unreachable"]
    out["token server unreachable"] = unreachable
    return out


def run_all_verbosities(make: Callable[[], Scenario]) -> list[tuple[Scenario, ChildResult]]:
    """Each verbosity in a scenario of its own (in parallel), then the stored run errors."""

    def one(args: list[str]) -> tuple[Scenario, ChildResult]:
        scenario = make()
        result = scenario.run(*args, env=NO_AMBIENT_CREDENTIALS, timeout=120)
        stored = scenario.run(
            "-c",
            "from smolqwery.models import ExportRun\n"
            "for run in ExportRun.objects.all(): print(run.status, run.error)",
            command="shell",
        )
        assert stored.returncode == 0, stored.describe()
        result.stdout += "\n[stored ExportRun errors]\n" + stored.output
        return scenario, result

    with ThreadPoolExecutor(len(VERBOSITIES)) as pool:
        return list(pool.map(one, VERBOSITIES))


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.parametrize(
    "case",
    [
        "token granted, export runs",
        "token refused",
        "damaged key",
        "escaped newlines",
        "token server unreachable",
    ],
)
def test_private_key_never_printed(
    case: str,
    pem: str,
    token_server: str,
    crash_scenarios: ScenarioFactory,
    bigquery_emulator: Any,
) -> None:
    config = cases(bigquery_emulator, token_server, pem)[case]

    def make() -> Scenario:
        scenario = crash_scenarios.new(
            "bigquery",
            bigquery_emulator,
            days=2,
            settings={
                "SMOLQWERY_RETRY_DEADLINE": 5,
                "LOGGING": DEBUG_EVERYTHING,
                "SMOLQWERY_EXTRACTORS": [EXTRACTORS[0]],
            },
        )
        scenario.settings = {
            **{k: v for k, v in scenario.settings.items() if k != "SMOLQWERY_BIGQUERY_ANONYMOUS"},
            **config,
        }
        return scenario

    slices = key_slices(pem)
    runs = run_all_verbosities(make)
    for _, result in runs:
        found = leaks(result.output, slices)
        assert not found, f"the key leaked in `{' '.join(result.args[3:])}`: {found[:3]}"
    for scenario, result in runs:
        if case == "token granted, export runs":
            assert result.returncode == 0, result.describe()
            assert scenario.problems() == []
        else:
            assert result.returncode not in (0, -9), result.describe()
    if case != "damaged key":  # (that one fails before any request)
        # the libraries' debug logging really was on: the test would prove little otherwise
        assert any("Starting new HTTP connection" in r.output for _, r in runs)


def test_settings_and_credential_errors_in_process(
    settings: Any, pem: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same, where a test can look at the exception objects themselves."""
    caplog.set_level(logging.DEBUG)
    slices = key_slices(pem)
    for key in (pem, corrupted(pem), pem.replace("\n", "\\n")):
        for name, value in google_key_settings(key, "http://127.0.0.1:9/token").items():
            setattr(settings, name, value)
        config = get_settings()
        assert not leaks(repr(config) + str(config), slices)
        with contextlib.suppress(ConfigurationError):
            bigquery_credentials(config)
        if key is not pem and "\\n" not in key:
            with pytest.raises(ConfigurationError) as caught:
                bigquery_credentials(config)
            text = "".join(
                f"{type(e).__name__}: {e} {e.args!r}"
                for e in (caught.value, caught.value.__cause__, caught.value.__context__)
                if e is not None
            )
            assert "SMOLQWERY_GOOGLE_PRIVATE_KEY" in str(caught.value)
            assert not leaks(text, slices)
    assert not leaks(caplog.text, slices)
