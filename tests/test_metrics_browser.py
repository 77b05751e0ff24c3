"""The Metrics page in a real browser: headless Chromium (Debian's ``chromium``), two sessions.

A test page (``/harness/``, served by this module, the test's URL configuration) loads the
Metrics page in two frames, 1200 and 420 CSS pixels wide. In the wide one it waits for the
charts, reads what uPlot drew (the values, and the canvas pixels where each point must be),
then picks "ISO week" in the period menu as a user would, waits for the new page, and reads
again; in both frames it measures horizontal overflow. The results are written into the test
page, which ``--dump-dom`` prints: they are compared with the warehouse's own rows (the table
and its ``_week`` view). The second session takes a screenshot of the same test page (both
widths side by side, in the admin's dark theme), which must show the charts' colours
(``SMOLQWERY_KEEP_SCREENSHOTS=<directory>`` keeps a copy there, to look at).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import secrets
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.static import serve

import smolqwery
from smolqwery import BaseExtractor, ExtractorType, sq_field
from smolqwery.admin_views import local_yesterday
from smolqwery.sql_views import render_view_sql, view_name
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from smolqwery.warehouses.testing import fetch_rows
from tests.fixtures.warehouses import make_batch
from tests.test_admin_browser import (
    LOGIN_TOKENS,
    chromium_binary,
    hex_rgb,
    one_time_login,
    png_pixels,
    run_chromium,
)

DATASET = "metrics_browser"
METRICS = "/admin/smolqwery/exportrun/metrics/"
STATIC_ROOTS = (
    Path(admin.__file__).parent / "static",
    Path(smolqwery.__file__).parent / "static",
)
#: The first colour of the page's palette (static/smolqwery/metrics.js).
FIRST_SERIES_COLOUR = "#4a90c2"

HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title>
<style>body{margin:0;display:flex;gap:8px;align-items:flex-start}
iframe{border:0;height:1000px;flex-shrink:0}</style></head>
<body>
<iframe id="wide" style="width:1200px" src="%(url)s"></iframe>
<iframe id="narrow" style="width:420px" src="%(url)s"></iframe>
<pre id="result"></pre>
<script>
"use strict";
const result = {};
function sleep(ms) { return new Promise(r => setTimeout(r, ms)); }
async function drawn(frame, period) {
  for (let i = 0; i < 200; i++) {
    const w = frame.contentWindow;
    const doc = frame.contentDocument;
    const menu = doc && doc.querySelector("#metrics-period");
    if (doc && doc.readyState === "complete" && w.smolqweryCharts &&
        menu && menu.value === period &&
        doc.querySelectorAll(".smolqwery-metric[data-drawn]").length ===
        doc.querySelectorAll(".smolqwery-metric").length) return;
    await sleep(50);
  }
  throw new Error("charts not drawn for " + period);
}
function near(ctx, x, y, rgb) {
  const data = ctx.getImageData(Math.round(x) - 3, Math.round(y) - 3, 7, 7).data;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - rgb[0]) < 24 && Math.abs(data[i + 1] - rgb[1]) < 24 &&
        Math.abs(data[i + 2] - rgb[2]) < 24) return true;
  }
  return false;
}
function read(frame) {
  const w = frame.contentWindow, doc = frame.contentDocument;
  const charts = {};
  for (const key of Object.keys(w.smolqweryCharts)) {
    const u = w.smolqweryCharts[key];
    const ctx = u.ctx;
    const rgb = [0x4a, 0x90, 0xc2];
    let found = 0, points = 0;
    u.data[1].forEach((v, i) => {
      if (v == null) return;
      points++;
      if (near(ctx, u.valToPos(u.data[0][i], "x", true), u.valToPos(v, "y", true), rgb)) found++;
    });
    charts[key] = {
      x: Array.from(u.data[0]),
      series: u.series.slice(1).map(s => s.label),
      values: u.data.slice(1).map(a => Array.from(a)),
      points: points, found: found,
      canvas: [u.ctx.canvas.width, u.ctx.canvas.height],
    };
  }
  return {
    period: doc.querySelector("#metrics-period").value,
    charts: charts,
    overflow: doc.documentElement.scrollWidth - doc.documentElement.clientWidth,
    width: doc.documentElement.clientWidth,
  };
}
async function run() {
  const wide = document.getElementById("wide"), narrow = document.getElementById("narrow");
  await drawn(wide, "day");
  await drawn(narrow, "day");
  result.day = read(wide);
  result.narrow = read(narrow);
  const select = wide.contentDocument.querySelector("#metrics-period");
  select.value = "week";
  select.dispatchEvent(new Event("change"));
  await sleep(100);
  await drawn(wide, "week");
  result.week = read(wide);
  const narrowSelect = narrow.contentDocument.querySelector("#metrics-period");
  narrowSelect.value = "week";
  narrowSelect.dispatchEvent(new Event("change"));
  await sleep(100);
  await drawn(narrow, "week");
  result.narrowWeek = read(narrow);
}
run().then(
  () => { document.getElementById("result").textContent = JSON.stringify(result); },
  (e) => { document.getElementById("result").textContent = JSON.stringify({error: String(e)}); }
);
</script></body></html>
"""


def harness(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HARNESS % {"url": METRICS})


def static(request: HttpRequest, path: str) -> HttpResponse:
    """The admin's and smolqwery's static files (no ``collectstatic`` in tests)."""
    for root in STATIC_ROOTS:
        if (root / path).is_file():
            return serve(request, path, document_root=root)
    raise Http404(path)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("test-login/<str:token>/", one_time_login),
    path("harness/", harness),
    re_path(r"^assets/(?P<path>.*)$", static),
]


@dataclasses.dataclass
class Visits:
    visits: int = sq_field(description="Visits that day")
    members: int = sq_field(differentiate=True, description="Members at the end of the day")


class VisitsExtractor(BaseExtractor[Visits]):
    def get_dataclass(self) -> type[Visits]:
        return Visits

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_rollups(self) -> tuple[str, ...]:
        return ("week", "month")

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


@pytest.fixture
def metrics_data(tmp_path: Path, settings: Any) -> DuckDBWarehouse:
    """Sixty days of visits ending yesterday, with the views migrations would create."""
    settings.ROOT_URLCONF = __name__
    settings.STATIC_URL = "/assets/"
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.SMOLQWERY_DATASET = DATASET
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.VisitsExtractor"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    yesterday = local_yesterday()
    days = [yesterday - datetime.timedelta(days=59 - i) for i in range(60)]
    table = VisitsExtractor().get_schema()
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, DATASET, busy_timeout=10)
    wh.ensure_dataset()
    wh.create_table(table)
    rows = [
        {"date": d, "visits": 20 + (i * 37) % 53, "members": 100 + 3 * i}
        for i, d in enumerate(days)
    ]
    wh.replace_days(make_batch(table, days[0], days[-1], rows))
    for kind in ("delta", "week", "month"):
        wh.create_or_replace_view(view_name(kind, table.name), render_view_sql(kind, table, wh))
    wh.close()
    return wh


def _epoch_day(day: datetime.date) -> int:
    return int(datetime.datetime.combine(day, datetime.time(), datetime.timezone.utc).timestamp())


@pytest.mark.django_db(transaction=True)
def test_metrics_page_in_headless_chromium(
    live_server: Any, metrics_data: DuckDBWarehouse, tmp_path: Path, django_user_model: Any
) -> None:
    binary = chromium_binary()
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "unused")

    def login_url() -> str:
        token = secrets.token_urlsafe(16)
        LOGIN_TOKENS[token] = user.pk
        return f"{live_server.url}/test-login/{token}/?next=/harness/"

    budget = "--virtual-time-budget=20000"
    size = "--window-size=1640,1000"
    dom = run_chromium(binary, tmp_path / "profile-dom", budget, size, "--dump-dom", login_url())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1), dom.stdout[-3000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "error" not in result, result

    wh = DuckDBWarehouse(metrics_data.path, DATASET, busy_timeout=10, read_only=True)
    expected = {
        "day": fetch_rows(wh, "visits", order_by=["date"]),
        "week": fetch_rows(wh, "visits_week", order_by=["date"]),
    }
    for period in ("day", "week"):
        drawn = result[period]
        assert drawn["period"] == period
        chart = drawn["charts"]["visits"]
        assert chart["series"] == ["visits", "members"]
        rows = expected[period]
        if period == "week":  # the default range (90 days) covers every week of the data
            assert len(rows) in (9, 10)
        assert chart["x"] == [_epoch_day(r["date"]) for r in rows]
        assert chart["values"] == [[r["visits"] for r in rows], [r["members"] for r in rows]]
        # Every point is drawn where its value says, in the series' colour.
        assert chart["found"] == chart["points"] == len(rows), chart
    delta = result["day"]["charts"]["visits__delta"]
    assert delta["values"] == [[r["members"] for r in fetch_rows(wh, "visits_delta", ["date"])]]
    assert result["day"]["overflow"] == 0 and result["week"]["overflow"] == 0
    assert result["narrow"]["width"] <= 420 and result["narrow"]["overflow"] == 0
    assert result["narrowWeek"]["overflow"] == 0
    assert result["narrow"]["charts"]["visits"]["canvas"][0] < 420 * 2

    screenshot = tmp_path / "metrics.png"
    shot = run_chromium(
        binary,
        tmp_path / "profile-shot",
        budget,
        "--window-size=1640,1000",
        "--force-dark-mode",  # prefers-color-scheme: dark, the admin's dark theme
        f"--screenshot={screenshot}",
        login_url(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert not LOGIN_TOKENS, "each login link is used exactly once"
    keep = os.environ.get("SMOLQWERY_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy2(screenshot, Path(keep) / "metrics.png")
    width, height, pixels = png_pixels(screenshot.read_bytes())
    assert (width, height) == (1640, 1000)
    colours = Counter(pixels)
    assert len(colours) > 50, "too few colours for a rendered page"
    background, _ = colours.most_common(1)[0]
    assert sum(background) < 3 * 64, f"the admin's dark theme is not on: {background}"
    # Both frames draw the first series in its colour (lines and points, several hundred px).
    left = Counter(pixels[y * width + x] for y in range(height) for x in range(0, 1200, 2))
    right = Counter(pixels[y * width + x] for y in range(height) for x in range(1208, 1628, 2))
    assert left[hex_rgb(FIRST_SERIES_COLOUR)] > 100, "no chart drawn in the wide frame"
    assert right[hex_rgb(FIRST_SERIES_COLOUR)] > 30, "no chart drawn in the narrow frame"
