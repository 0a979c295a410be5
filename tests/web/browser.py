"""Helpers for the browser tests: a ``microsight serve`` process and headless Chromium."""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--window-size=1280,900")


def browser_binaries() -> tuple[str | None, str | None]:
    """Paths of Debian's chromium and chromedriver, if installed."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


class Server:
    """``microsight serve`` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "microsight", "serve", "--no-browser", "--port", "0",
             "--data-dir", str(data_dir), "--max-upload-mb", "50"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
        lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []

        def pump() -> None:
            for line in self.proc.stdout:
                self.log.append(line)
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = re.match(r"microsight: serving at (http://127\.0\.0\.1:(\d+)/\?token=\S+)",
                             line)
            if found:
                self.url, self.port = found.group(1), int(found.group(2))
                self.base = f"http://127.0.0.1:{self.port}"
                self._wait_listening(deadline)
                return
        self.stop()
        raise RuntimeError("server did not start: " + "".join(self.log))

    def _wait_listening(self, deadline: float) -> None:
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("server not listening")

    def kill(self) -> None:
        """End the server at once, as a crash or a closed laptop would."""
        self.proc.kill()
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        """End the server if it still runs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def fetch(url: str, token: str) -> bytes:
    """GET a loopback URL with the app's cookie, as the browser's download would."""
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, headers={"Cookie": f"microsight_token={token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def make_driver():
    """Headless Chromium through Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def screenshot(driver, name: str) -> None:
    """Save the whole page at 1280 px wide into $MICROSIGHT_WEB_SCREENSHOTS (if set)."""
    folder = os.environ.get("MICROSIGHT_WEB_SCREENSHOTS")
    if not folder:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 140, 600), 2200))
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    time.sleep(0.5)
    path = Path(folder) / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)
    try:  # palette PNG keeps the docs small
        from PIL import Image

        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=96)
        small.save(path, optimize=True)
    except ImportError:
        pass
