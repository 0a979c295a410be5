"""Safety of the local web app: access token, same-origin writes, upload limit, safe paths.

The app runs on the user's machine, but any web page the user visits could
send requests to ``127.0.0.1``. So every request must carry the secret token
printed by ``microsight serve`` (as ``?token=`` once, then as a cookie the
browser keeps for this origin only), requests that change anything must come
from the app's own pages (``Origin`` or ``Referer``), request bodies are
limited in size, and every file name a user gives is checked before it
touches the disk.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "microsight_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,120}$")


class UnsafeName(ValueError):
    """A user-given name that could leave its folder or hide as a dot-file."""


def new_token() -> str:
    """A fresh URL-safe secret (32 random bytes)."""
    return secrets.token_urlsafe(32)


def safe_name(name: str) -> str:
    """Check a file or record name: no folders, no ``..``, no leading dot.

    Raises
    ------
    UnsafeName
        When the name could reach outside its folder (answered with 400).
    """
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise UnsafeName(f"unsafe name {name!r}: use letters, digits, '.', '_', '-' only")
    return name


def inside(root: Path, *parts: str) -> Path:
    """``root/parts`` when it stays inside ``root`` (after resolving links), else raise."""
    base = root.resolve()
    for part in parts:
        safe_name(part)
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise UnsafeName("path leaves the data folder")
    return path


def _same_origin(scope: Scope, headers: dict[str, str]) -> bool:
    """Whether a state-changing request comes from the app's own pages."""
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    host = headers.get("host", "")
    return bool(host) and parts.netloc == host and parts.scheme == scope.get("scheme", "http")


class Guard:
    """ASGI middleware: token, same-origin writes and the request-body limit.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    token : str
        The secret every request must carry (query ``token`` or cookie).
    max_body : int
        Largest request body in bytes; larger ones get 413.
    """

    def __init__(self, app: ASGIApp, token: str, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refuse(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._limited(scope, receive, send, headers)

    def _refuse(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        query = QueryParams(scope.get("query_string", b""))
        given = query.get("token")
        if given is not None:
            if not secrets.compare_digest(given, self.token):
                return PlainTextResponse("wrong access token", status_code=403)
            if scope["method"] == "GET":
                # Keep the token out of the address bar, history and Referer headers.
                rest = urlencode([(k, v) for k, v in query.multi_items() if k != "token"])
                path = scope.get("path", "/")
                if not path.startswith("/") or path.startswith("//"):
                    path = "/"  # never redirect to another host
                response = RedirectResponse(path + (f"?{rest}" if rest else ""),
                                            status_code=303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
                return response
        else:
            cookie = _cookie(headers.get("cookie", ""))
            if not cookie:
                return PlainTextResponse(
                    "access token missing: open the link that 'microsight serve' printed",
                    status_code=401)
            if not secrets.compare_digest(cookie, self.token):
                return PlainTextResponse("wrong access token", status_code=403)
        if scope["method"] not in SAFE_METHODS and not _same_origin(scope, headers):
            return PlainTextResponse("refused: request from another site", status_code=403)
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send,
                       headers: dict[str, str]) -> None:
        too_large = PlainTextResponse(
            f"upload too large: the limit is {self.max_body // 2**20} MB "
            "(microsight serve --max-upload-mb)", status_code=413)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await too_large(scope, receive, send)
            return
        seen = 0
        state = {"started": False, "over": False}

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                state["over"] = True
                raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            if state["over"]:
                return  # the app's error page for the aborted read; 413 goes instead
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            pass
        if state["over"] and not state["started"]:
            await too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE:
            return value
    return None
