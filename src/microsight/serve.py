"""``microsight serve``: start the local web app and open it in the browser.

The command only starts the server; the app (``microsight.web``) is loaded by
uvicorn from its import string, so the command line never imports the web
layer (they are independent layers) and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from microsight.errors import MicrosightError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
APP = "microsight.web.app:app_from_env"


def check_installed() -> None:
    """Refuse with one line when the ``web`` extra is missing."""
    missing = [m for m in ("fastapi", "jinja2", "uvicorn", "multipart")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MicrosightError(f"the web app needs {', '.join(missing)}: pip install "
                              '"microsight[web]"')


def server_url(host: str, port: int, token: str) -> str:
    """The address to open, with the access token."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def prepare(host: str, port: int, data_dir: Path, max_upload_mb: int,
            token: str | None = None) -> tuple[dict, str]:
    """Environment for the app and the URL to open (no server started).

    Returns
    -------
    tuple
        ``(settings for uvicorn.Config, url)``.
    """
    token = token or secrets.token_urlsafe(32)
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(MICROSIGHT_WEB_DATA_DIR=str(data_dir), MICROSIGHT_WEB_TOKEN=token,
                      MICROSIGHT_WEB_MAX_UPLOAD_MB=str(max_upload_mb))
    config = {"app": APP, "factory": True, "host": host, "port": port,
              "log_level": "warning", "timeout_graceful_shutdown": 5}
    return config, server_url(host, port, token)


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option(
        help="Address to listen on. The default lets only this computer connect; "
             "another address exposes the app to the network.")] = "127.0.0.1",
    data_dir: Annotated[Path, typer.Option(
        help="Folder for uploads, models, results and jobs.")] = Path("microsight-data"),
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload in MB.")] = 2048,
    no_browser: Annotated[bool, typer.Option("--no-browser",
                                             help="Do not open the browser.")] = False,
) -> None:
    """Open the microsight web app: data in, model trained and checked, results out."""
    check_installed()
    import uvicorn

    if host not in LOOPBACK:
        print(f"microsight: warning: listening on {host}: anyone who can reach this "
              "computer and has the link can use the app and its data", file=sys.stderr)
    if port == 0:
        port = _free_port(host)
    config, url = prepare(host, port, data_dir, max_upload_mb)
    print(f"microsight: serving at {url}", flush=True)
    print(f"microsight: data folder {os.environ['MICROSIGHT_WEB_DATA_DIR']}; "
          "press Ctrl+C to stop", flush=True)
    if not no_browser:
        threading.Timer(1.0, webbrowser.open, (url,)).start()
    uvicorn.Server(uvicorn.Config(**config)).run()


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
