"""A headless Chromium driven over the DevTools protocol, for page tests that click.

``--dump-dom`` and ``--screenshot`` (as the dashboard tests use them) see a page once; a test that
clicks, waits and looks again talks to the browser: start it with a DevTools port, open a page,
evaluate JavaScript, dispatch real mouse events, capture screenshots.

    with Browser(chromium, profile_dir) as browser:
        page = browser.open(url)
        page.wait_for("document.querySelector('#graph').dataset.nodes > 0")
        page.click(400, 300)
        page.screenshot(path)
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests


class Browser:
    def __init__(self, chromium: str, profile: Path, size: tuple[int, int] = (1400, 900)) -> None:
        self.chromium, self.profile, self.size = chromium, Path(profile), size
        self.process: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> "Browser":
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        port_file.unlink(missing_ok=True)  # a browser that ran before in this profile left its own
        self.process = subprocess.Popen(
            [self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={self.profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.chromium} did not start its DevTools server")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def open(self, url: str) -> "Page":
        target = requests.put(f"http://127.0.0.1:{self.port}/json/new?{url}", timeout=30).json()
        return Page(target["webSocketDebuggerUrl"])


class Page:
    """One tab. Each call opens the tab's DevTools socket, sends one command and waits for its answer."""

    _ids = itertools.count(1)

    def __init__(self, websocket_url: str) -> None:
        self.websocket_url = websocket_url

    def command(self, method: str, **params: Any) -> dict:
        async def call() -> dict:
            async with aiohttp.ClientSession() as session, session.ws_connect(self.websocket_url,
                                                                              max_msg_size=0) as socket:
                number = next(self._ids)
                await socket.send_json({"id": number, "method": method, "params": params})
                async for message in socket:
                    answer = json.loads(message.data)
                    if answer.get("id") == number:
                        if "error" in answer:
                            raise RuntimeError(f"{method}: {answer['error']}")
                        return answer["result"]
            raise RuntimeError(f"{method}: the DevTools socket closed")
        return asyncio.run(asyncio.wait_for(call(), 60))

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON."""
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30) -> Any:
        """The expression's value once it is true; an error on the way (the page still loading) is false."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never made {expression!r} true")
            time.sleep(0.2)

    def click(self, x: float, y: float) -> None:
        """A real left click at page coordinates (mouse moved, pressed, released)."""
        self.command("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        for kind in ("mousePressed", "mouseReleased"):
            self.command("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.command("Page.captureScreenshot", format="png")["data"]))
        return path
