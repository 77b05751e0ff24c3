"""The units of work in the admin (issue 17), in headless Chromium, at a phone's width.

A test page (``/harness/``, served by this module, the test's URL configuration) frames the
``ExportUnit`` list of one run in a 390 px wide iframe, then writes into itself what the frame
shows: each row's table, days and state, the horizontal overflow of the frame's document, and
whether the states show without scrolling the list sideways (the admin's narrow layout scrolls
the list inside its box; the state comes second so that it shows).
``--dump-dom`` prints it. The run has a unit in each state; its running unit's table lease is
held by this process (so "running", not "interrupted"); another run's unit must not be listed.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from smolqwery.locking import table_lock
from smolqwery.models import ExportUnit
from tests.test_admin_browser import LOGIN_TOKENS, chromium_binary, one_time_login, run_chromium
from tests.test_metrics_browser import static

RUN = "browser-plan"
UNITS = f"/admin/smolqwery/exportunit/?run_id={RUN}"
WIDTH = 390

HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title></head><body style="margin:0">
<iframe id="units" style="width:%(width)dpx;height:800px;border:0" src="%(url)s"></iframe>
<pre id="result">pending</pre>
<script>
const frame = document.getElementById("units");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument;
  const cell = (row, name) => (row.querySelector(".field-" + name) || {}).textContent || "";
  const rows = Array.from(doc.querySelectorAll("#result_list tbody tr")).map(row => [
    cell(row, "table_name"), cell(row, "first_day"), cell(row, "state"),
  ]);
  document.getElementById("result").textContent = JSON.stringify({
    rows: rows,
    overflow: doc.documentElement.scrollWidth - doc.documentElement.clientWidth,
    width: doc.documentElement.clientWidth,
    // Where each state cell ends: the list scrolls sideways, the state must show without it.
    stateEdges: Array.from(doc.querySelectorAll("#result_list td.field-state"))
      .map(c => Math.ceil(c.getBoundingClientRect().right)),
    stylesheet: getComputedStyle(doc.querySelector("#header")).display !== "inline",
  });
});
</script></body></html>
"""


def harness(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HARNESS % {"url": UNITS, "width": WIDTH})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("test-login/<str:token>/", one_time_login),
    path("harness/", harness),
    path("assets/<path:path>", static),
]


def _unit(run: str, table: str, first: datetime.date, status: str) -> ExportUnit:
    now = datetime.datetime.now(datetime.timezone.utc)
    done = status in ("done", "failed")
    return ExportUnit(
        unit_id=f"{run}-{table}-{first}",
        run_id=run,
        extractor=f"analytics.{table}",
        extractor_path=f"analytics.extractors.{table}",
        table_name=table,
        first_day=first,
        last_day=first + datetime.timedelta(days=9),
        status=status,
        attempts=0 if status == "queued" else 1,
        worker="" if status == "queued" else "w1@host",
        queued_at=now,
        started_at=None if status == "queued" else now,
        finished_at=now if done else None,
        rows=1234 if status == "done" else 0,
        error="WarehouseError: load failed" if status == "failed" else "",
    )


@pytest.mark.django_db(transaction=True)
def test_the_units_of_a_run_in_headless_chromium_at_a_phone_width(
    live_server: Any, settings: Any, tmp_path: Path, django_user_model: Any
) -> None:
    binary = chromium_binary()
    settings.ROOT_URLCONF = __name__
    settings.STATIC_URL = "/assets/"
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "unused")
    first = datetime.date(2026, 1, 1)
    ExportUnit.objects.bulk_create(
        [
            _unit(RUN, "order_line_with_a_long_name", first, "done"),
            _unit(RUN, "order_line_with_a_long_name", first + datetime.timedelta(10), "running"),
            _unit(RUN, "visits", first, "queued"),
            _unit(RUN, "signups", first, "failed"),
            _unit("an-older-plan", "visits", first, "superseded"),
        ]
    )
    token = secrets.token_urlsafe(16)
    LOGIN_TOKENS[token] = user.pk
    url = f"{live_server.url}/test-login/{token}/?next=/harness/"
    with table_lock("order_line_with_a_long_name", RUN, 600):  # its worker is alive
        dom = run_chromium(
            binary,
            tmp_path / "profile",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1) != "pending", dom.stdout[-3000:]
    result = json.loads(found.group(1))
    assert sorted(map(tuple, result["rows"])) == [
        ("order_line_with_a_long_name", "Jan. 1, 2026", "done"),
        ("order_line_with_a_long_name", "Jan. 11, 2026", "running"),
        ("signups", "Jan. 1, 2026", "failed"),
        ("visits", "Jan. 1, 2026", "queued"),
    ]
    assert result["stylesheet"], "the admin's stylesheet did not load"
    assert result["width"] <= WIDTH and result["overflow"] == 0, result
    assert len(result["stateEdges"]) == 4 and max(result["stateEdges"]) <= WIDTH, result
