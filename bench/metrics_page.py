"""``python -m bench.metrics_page``: how long the admin's Metrics page takes with 20 tables.

A DuckDB file with ``--tables`` date-aggregated tables (three numeric columns, one of them a
running total, weekly and monthly views) over ``--days`` days; the page is asked for with
Django's test client, once with an empty cache (one query per chart) and ``--repeat`` times
with the cache warm (no warehouse query). With ``--browser``, headless Chromium loads the
page from a local server and reports when every chart is drawn (``performance.now()`` in the
page, from navigation start). Figures in bench/RESULTS.md; nothing here is a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import re
import secrets
import shutil
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smolqwery import BaseExtractor, ExtractorType, sq_field

MAX_TABLES = 50
LOGIN_TOKENS: dict[str, int] = {}


@dataclasses.dataclass
class MetricRow:
    visits: int = sq_field(description="Visits that day")
    revenue: float = sq_field(description="Revenue that day")
    members: int = sq_field(differentiate=True, description="Members at the end of the day")


class _Metric(BaseExtractor[MetricRow]):
    def get_dataclass(self) -> type[MetricRow]:
        return MetricRow

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def get_rollups(self) -> tuple[str, ...]:
        return ("week", "month")

    def get_table_name(self) -> str:
        return type(self).__name__.lower()

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


for _i in range(MAX_TABLES):
    globals()[f"Metric{_i:02d}"] = type(f"Metric{_i:02d}", (_Metric,), {})


# -- the page's server, for the browser ---------------------------------------------------------

HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="f" style="width:1280px;height:900px;border:0" src="%(url)s"></iframe>
<pre id="result"></pre>
<script>
// The frame's load event comes after its deferred scripts drew every chart.
window.addEventListener("load", function () {
  const w = document.getElementById("f").contentWindow;
  const nav = w.performance.getEntriesByType("navigation")[0];
  document.getElementById("result").textContent = JSON.stringify({
    charts: w.document.querySelectorAll(".smolqwery-metric[data-drawn]").length,
    drawn_ms: w.smolqweryDrawn.at, draw_ms: w.smolqweryDrawn.took,
    response_ms: nav.responseEnd - nav.requestStart, load_ms: nav.loadEventStart});
});
</script></body></html>"""


def _login(request: Any, token: str) -> Any:
    from django.contrib.auth import get_user_model, login
    from django.http import HttpResponse, HttpResponseRedirect

    user_id = LOGIN_TOKENS.pop(token, None)
    if user_id is None:
        return HttpResponse(status=403)
    login(request, get_user_model().objects.get(pk=user_id), backend=_BACKEND)
    return HttpResponseRedirect("/harness/")


def _harness(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse(HARNESS % {"url": "/admin/smolqwery/exportrun/metrics/"})


_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _urls() -> list[Any]:
    from django.contrib import admin
    from django.urls import path

    return [
        path("admin/", admin.site.urls),
        path("bench-login/<str:token>/", _login),
        path("harness/", _harness),
    ]


def __getattr__(name: str) -> Any:
    """``urlpatterns``, built when Django asks (settings are configured by then)."""
    if name == "urlpatterns":
        return _urls()
    raise AttributeError(name)


def configure(workdir: Path, tables: int, cache: str) -> None:
    from django.conf import settings

    caches: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    if cache == "redis":
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://127.0.0.1:6379/0",
                "KEY_PREFIX": f"smolqwery-bench-{secrets.token_hex(4)}",
            }
        }
    settings.configure(
        SECRET_KEY="bench-only",
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="Europe/Paris",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "smolqwery",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF="bench.metrics_page",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(workdir / "db.sqlite3")}
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        STATIC_URL="/static/",
        CACHES=caches,
        SMOLQWERY_WAREHOUSE="duckdb",
        SMOLQWERY_DUCKDB_PATH=workdir / "warehouse.duckdb",
        SMOLQWERY_DATASET="bench_metrics",
        SMOLQWERY_EXTRACTORS=[f"bench.metrics_page.Metric{i:02d}" for i in range(tables)],
    )


def fill(workdir: Path, tables: int, days: int) -> None:
    import random
    from zoneinfo import ZoneInfo

    import pyarrow as pa

    from smolqwery.days import day_windows
    from smolqwery.rows import arrow_schema
    from smolqwery.sql_views import render_view_sql, views_of
    from smolqwery.warehouses.base import DayBatch
    from smolqwery.warehouses.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(workdir / "warehouse.duckdb", "bench_metrics")
    wh.ensure_dataset()
    last = datetime.date.today() - datetime.timedelta(days=1)
    first = last - datetime.timedelta(days=days - 1)
    for i in range(tables):
        table = globals()[f"Metric{i:02d}"]().get_schema()
        wh.create_table(table)
        for name, kind in views_of(table):
            wh.create_or_replace_view(name, render_view_sql(kind, table, wh))
        rng = random.Random(i)
        windows = day_windows(
            [first + datetime.timedelta(days=d) for d in range(days)], ZoneInfo("Europe/Paris")
        )
        members, rows = 0, []
        for w in windows:
            members += rng.randint(0, 20)
            rows.append(
                {"date": w.day, "visits": rng.randint(0, 5000), "revenue": rng.random() * 1e4,
                 "members": members}
            )  # fmt: skip
        chunk = pa.RecordBatch.from_pylist(rows, schema=arrow_schema(table))
        wh.replace_days(DayBatch(table, windows, [chunk], "bench", {w.day: 1 for w in windows}))
    wh.close()


def browser_figures(repeat: int) -> list[dict[str, Any]]:
    """Chromium loads the page from a local WSGI server; when every chart is drawn."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.contrib.auth import get_user_model
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application

    from bench import metrics_page as served

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        print("no chromium: browser figures skipped", file=sys.stderr)
        return []

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Threaded(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = make_server(
        "127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), Threaded, Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    user = get_user_model().objects.get(username="bench")
    out = []
    with tempfile.TemporaryDirectory() as profiles:
        for n in range(repeat):
            token = secrets.token_urlsafe(12)
            served.LOGIN_TOKENS[token] = user.pk  # the module Django serves, not __main__
            url = f"http://127.0.0.1:{server.server_port}/bench-login/{token}/"
            result = subprocess.run(
                [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-dev-shm-usage", f"--user-data-dir={profiles}/p{n}",
                 "--window-size=1300,950", "--dump-dom", url],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
            if found and found.group(1):
                out.append(json.loads(found.group(1).replace("&quot;", '"')))
            else:
                print("no figure from chromium:", result.stdout[-800:], result.stderr[-800:])
    server.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_page")
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--period", default="day", choices=("day", "week", "month"))
    parser.add_argument("--cache", default="locmem", choices=("locmem", "redis"))
    parser.add_argument("--browser", action="store_true", help="Also time it in Chromium.")
    args = parser.parse_args(argv)
    if not 1 <= args.tables <= MAX_TABLES:
        parser.error(f"--tables: 1 to {MAX_TABLES}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        configure(workdir, args.tables, args.cache)
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.cache import cache
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        fill(workdir, args.tables, args.days)
        filled = time.perf_counter() - started
        user = get_user_model().objects.create_superuser("bench", "b@example.com", None)
        client = Client()
        client.force_login(user)
        url = "/admin/smolqwery/exportrun/metrics/"
        params = {"period": args.period}
        if args.days > 90:
            params["start"] = (
                datetime.date.today() - datetime.timedelta(days=args.days)
            ).isoformat()
        if args.cache == "locmem":
            cache.clear()  # a Redis cache starts empty: its key prefix is new
        t = time.perf_counter()
        response = client.get(url, params)
        cold = time.perf_counter() - t
        page = response.context["page"]
        assert response.status_code == 200 and not page.error, page.error
        cold_queries, charts = page.queries, len(page.charts)
        warm = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            response = client.get(url, params)
            warm.append(time.perf_counter() - t)
            assert response.context["page"].queries == 0
        size = len(response.content)
        print(f"{args.tables} tables x {args.days} days, {charts} charts, period {args.period}, "
              f"cache {args.cache}; filled in {filled:.1f} s")  # fmt: skip
        print(f"cold cache: {cold * 1000:.0f} ms ({cold_queries} queries, the ledger's included)")
        print(
            f"warm cache: median {statistics.median(warm) * 1000:.0f} ms, "
            f"max {max(warm) * 1000:.0f} ms over {len(warm)} views (no query); "
            f"page {size / 1024:.0f} KiB"
        )
        if args.browser:
            figures = browser_figures(max(3, min(args.repeat, 5)))
            for f in figures:
                print(
                    f"browser (warm): {f['charts']} charts drawn {f['drawn_ms']:.0f} ms after "
                    f"navigation start (drawing {f['draw_ms']:.0f} ms; server response "
                    f"{f['response_ms']:.0f} ms; load event {f['load_ms']:.0f} ms)"
                )
        if args.cache == "redis":  # only this run's keys: the Redis may serve others
            client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
            for key in client.scan_iter(f"{cache.key_prefix}:*"):
                client.delete(key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
