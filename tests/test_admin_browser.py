"""The export overview in a real browser: headless Chromium (Debian's ``chromium`` package).

Chromium cannot type a password, so this module is also the URL configuration of the test: a
one-time login link (a token made by the test, consumed by the first request) logs the browser
in and redirects to the admin page. The screenshot is decoded here (a minimal PNG reader; no
imaging library is needed) and must show the chart bars, in their own colour, on a page that is
not blank.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import secrets
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, re_path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.static import serve

from smolqwery import BaseExtractor, ExtractorType, sq_field
from smolqwery.admin_views import local_yesterday
from smolqwery.charts import BAR_COLOUR
from smolqwery.models import ExportRun
from smolqwery.warehouses.duckdb import DuckDBWarehouse
from tests.fixtures.warehouses import PARIS, make_batch

OVERVIEW = "/admin/smolqwery/exportrun/overview/"
DATASET = "browser_tests"
ADMIN_STATIC = Path(admin.__file__).parent / "static"
#: The admin header's colour in Django's default (light) theme.
ADMIN_HEADER_COLOUR = "#417690"
#: Token → user id; each token logs in once.
LOGIN_TOKENS: dict[str, int] = {}


def one_time_login(request: HttpRequest, token: str) -> HttpResponse:
    user_id = LOGIN_TOKENS.pop(token, None)
    if user_id is None:
        return HttpResponse("unknown or used token", status=403)
    user = get_user_model().objects.get(pk=user_id)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    target = request.GET.get("next", "/admin/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        target = "/admin/"
    return HttpResponseRedirect(target)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("test-login/<str:token>/", one_time_login),
    # The admin's CSS, so that the screenshot shows the page as staff see it. Not under
    # /static/: the live server answers that prefix itself, from STATIC_ROOT (unset in tests).
    re_path(r"^assets/(?P<path>.*)$", serve, {"document_root": ADMIN_STATIC}),
]


@dataclasses.dataclass
class Visits:
    visits: int = sq_field(differentiate=True)


@dataclasses.dataclass
class Order:
    timestamp: datetime.datetime
    product: str


class VisitsExtractor(BaseExtractor[Visits]):
    def get_dataclass(self) -> type[Visits]:
        return Visits

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.date_aggregated

    def extract(self, date_start: datetime.datetime, date_end: datetime.datetime) -> Iterator[Any]:
        yield from ()


class OrderExtractor(VisitsExtractor):
    def get_dataclass(self) -> type[Any]:
        return Order

    def get_extractor_type(self) -> ExtractorType:
        return ExtractorType.individual_rows


# -- a minimal PNG reader --------------------------------------------------------------------


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind_of_filter = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind_of_filter == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif kind_of_filter == 2:
            line = bytearray((v + p) & 0xFF for v, p in zip(line, previous, strict=True))
        elif kind_of_filter == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + previous[x]) >> 1)) & 0xFF
        elif kind_of_filter == 4:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                corner = previous[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + _paeth(left, previous[x], corner)) & 0xFF
        else:
            assert kind_of_filter == 0, f"unknown PNG filter {kind_of_filter}"
        pixels += [(line[x], line[x + 1], line[x + 2]) for x in range(0, stride, bpp)]
        previous = line
    return width, height, pixels


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


# -- the test -----------------------------------------------------------------------------------


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "headless Chromium is needed: apt-get install chromium (Debian's package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def overview_data(tmp_path: Path, settings: Any) -> datetime.date:
    """Thirty days of orders (varying counts) and visits, and a last run with one failure."""
    settings.ROOT_URLCONF = __name__
    settings.STATIC_URL = "/assets/"
    settings.SMOLQWERY_WAREHOUSE = "duckdb"
    settings.SMOLQWERY_DUCKDB_PATH = tmp_path / "warehouse.duckdb"
    settings.SMOLQWERY_DATASET = DATASET
    settings.SMOLQWERY_EXTRACTORS = [f"{__name__}.VisitsExtractor", f"{__name__}.OrderExtractor"]
    yesterday = local_yesterday()
    first = yesterday - datetime.timedelta(days=29)
    wh = DuckDBWarehouse(settings.SMOLQWERY_DUCKDB_PATH, DATASET, busy_timeout=10)
    wh.ensure_dataset()
    visits, orders = VisitsExtractor().get_schema(), OrderExtractor().get_schema()
    wh.create_table(visits)
    wh.create_table(orders)
    days = [first + datetime.timedelta(days=i) for i in range(30)]
    wh.replace_days(make_batch(visits, first, yesterday, [{"date": d, "visits": 1} for d in days]))
    rows = [
        {"timestamp": datetime.datetime.combine(d, datetime.time(15), PARIS), "product": "mug"}
        for i, d in enumerate(days[:-2])  # two days behind
        for _ in range(3 + (i * 7) % 11)
    ]
    wh.replace_days(make_batch(orders, first, days[-3], rows))
    wh.close()
    now = datetime.datetime.now(datetime.timezone.utc)
    for table, status, error in (
        ("visits", ExportRun.Status.SUCCESS, ""),
        ("order", ExportRun.Status.FAILED, "WarehouseError: load of order failed"),
    ):
        ExportRun.objects.create(
            run_id="browser-run",
            extractor=f"{__name__}.{table}",
            table_name=table,
            started_at=now,
            finished_at=now,
            status=status,
            error=error,
        )
    return yesterday


@pytest.mark.django_db(transaction=True)
def test_overview_in_headless_chromium(
    live_server: Any, overview_data: datetime.date, tmp_path: Path, django_user_model: Any
) -> None:
    binary = chromium_binary()
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "unused")

    def login_url() -> str:
        token = secrets.token_urlsafe(16)
        LOGIN_TOKENS[token] = user.pk
        return f"{live_server.url}/test-login/{token}/?next={OVERVIEW}"

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", login_url())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="export-tables"' in dom.stdout, dom.stdout[:2000]
    assert 'data-table="visits"' in dom.stdout and 'data-table="order"' in dom.stdout
    assert "2 days behind" in dom.stdout
    assert "load of order failed" in dom.stdout
    assert dom.stdout.count('class="smolqwery-chart"') == 2

    screenshot = tmp_path / "overview.png"
    shot = run_chromium(
        binary, tmp_path / "profile-shot", f"--screenshot={screenshot}", login_url()
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert not LOGIN_TOKENS, "each login link is used exactly once"

    width, height, pixels = png_pixels(screenshot.read_bytes())
    assert (width, height) == (1200, 900)
    colours = Counter(pixels)
    _, background_count = colours.most_common(1)[0]
    assert background_count < 0.95 * len(pixels), "the page is (almost) one colour"
    assert len(colours) > 50, "too few colours for a rendered admin page"
    assert colours[hex_rgb(ADMIN_HEADER_COLOUR)] > 10_000, "the admin's stylesheet did not load"
    # The bars: 28 days of orders and 30 of visits, each several pixels wide.
    assert colours[hex_rgb(BAR_COLOUR)] > 1000, "no chart bar visible in the screenshot"
