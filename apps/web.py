"""What the apps' web views share: each app's live dashboard, served from ``apps/static``, its history, and ``/metrics``.

A dashboard draws one of three windows (:data:`WINDOWS`) of a :class:`SampleHistory`: the
app's one-second samples of the last hour, one sample a minute for the day before, each
window thinned to at most :data:`POINTS_PER_WINDOW` points so a day costs the page no more
than five minutes.

    >>> history = SampleHistory()
    >>> for t in range(0, 7200, 1):
    ...     history.add({"t": float(t), "n": t})
    >>> len(history.fine), len(history.coarse)
    (3600, 120)
    >>> [len(history.window(7199.0, w)) for w in WINDOWS]
    [300, 360, 30]
    >>> history.window(7199.0, 300)[-1]["n"]
    7199
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

STATIC = Path(__file__).parent / "static"
#: window length in seconds -> its name on the page
WINDOWS = {300: "5 min", 3600: "1 h", 86400: "24 h"}
DEFAULT_WINDOW_S = 300
POINTS_PER_WINDOW = 360
FINE_S, COARSE_STEP_S = 3600, 60
VENDOR = {"uplot.iife.min.js": "application/javascript", "uplot.min.css": "text/css",
          "uplot.LICENSE": "text/plain"}


class SampleHistory:
    """Samples (dicts with ``t`` in epoch seconds) of the last hour, and one a minute for a day."""

    def __init__(self):
        self.fine: deque[dict] = deque(maxlen=FINE_S)  # one a second when the app samples each second
        self.coarse: deque[dict] = deque(maxlen=max(WINDOWS) // COARSE_STEP_S)

    def add(self, sample: dict) -> None:
        """Add the newest sample (samples arrive in time order)."""
        self.fine.append(sample)
        if not self.coarse or sample["t"] // COARSE_STEP_S > self.coarse[-1]["t"] // COARSE_STEP_S:
            self.coarse.append(sample)

    def replace_older(self, samples: list[dict]) -> None:
        """Put ``samples`` (read back after a restart, in time order) before those taken since."""
        newer = list(self.fine)
        self.fine.clear()
        self.coarse.clear()
        first = newer[0]["t"] if newer else float("inf")
        for sample in [s for s in samples if s["t"] < first] + newer:
            self.add(sample)

    def latest(self) -> dict | None:
        return self.fine[-1] if self.fine else None

    def window(self, now_s: float, window_s: int) -> list[dict]:
        """The samples of the last ``window_s`` seconds, the last of each of at most 360 equal steps."""
        since = now_s - window_s
        first_fine = self.fine[0]["t"] if self.fine else float("inf")
        source = self.fine if window_s <= FINE_S else [s for s in self.coarse if s["t"] < first_fine] + list(self.fine)
        step = window_s / POINTS_PER_WINDOW
        out: list[dict] = []
        for sample in source:
            if sample["t"] <= since:
                continue
            if out and sample["t"] // step == out[-1]["t"] // step:
                out[-1] = sample
            else:
                out.append(sample)
        return out


def window_of(query) -> int | None:
    """The window a request asks for (``?window=3600``; 5 min by default), or None if it is not one of WINDOWS.

    >>> window_of({}), window_of({"window": "86400"}), window_of({"window": "60"})
    (300, 86400, None)
    """
    raw = query.get("window", str(DEFAULT_WINDOW_S))
    return int(raw) if raw.isdigit() and int(raw) in WINDOWS else None


def serve_dashboard(app, name: str, data: Callable[[int], dict]) -> None:
    """``/dashboard/``: the page ``static/<name>.html``, its script, the shared charts, uPlot, its data.

    ``data(window_s)`` is the JSON the page polls for the window it shows (the windows it can choose added).
    """

    @app.page("/dashboard/")
    async def dashboard(web, request):
        return web.html((STATIC / f"{name}.html").read_text())

    @app.page("/dashboard/{script}.js")
    async def dashboard_script(web, request, script: str):
        if script not in ("charts", name):
            return web.text("not found", status=404)
        return web.bytes((STATIC / f"{script}.js").read_bytes(), content_type="application/javascript")

    @app.page("/dashboard/charts.css")
    async def dashboard_styles(web, request):
        return web.bytes((STATIC / "charts.css").read_bytes(), content_type="text/css")

    @app.page("/dashboard/vendor/{file}")
    async def dashboard_vendor(web, request, file: str):
        if file not in VENDOR:
            return web.text("not found", status=404)
        return web.bytes((STATIC / "vendor" / file).read_bytes(), content_type=VENDOR[file])

    @app.page("/dashboard/data.json")
    async def dashboard_data(web, request):
        window_s = window_of(request.query)
        if window_s is None:
            return web.json({"error": f"window must be one of {', '.join(map(str, WINDOWS))} (seconds)"}, status=400)
        return web.json(data(window_s) | {"windows": WINDOWS})


def serve_prometheus(app, registry: CollectorRegistry) -> None:
    """``/metrics``: the registry's figures in Prometheus's text format, read at scrape time."""

    @app.page("/metrics")
    async def prometheus(web, request):
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])
