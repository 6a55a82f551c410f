"""What the apps' web views share: each app's live dashboard, served from ``apps/static``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

STATIC = Path(__file__).parent / "static"


def serve_dashboard(app, name: str, data: Callable[[], dict]) -> None:
    """``/dashboard/``: the page ``static/<name>.html``, its script, the shared charts and styles, its data."""

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

    @app.page("/dashboard/data.json")
    async def dashboard_data(web, request):
        return web.json(data())
