"""Send tweepy's requests somewhere other than its hard-coded ``https://api.twitter.com``.

tweepy.Client builds every URL from a fixed host. Mounting :class:`BaseURLAdapter`
on ``client.session`` rewrites each request's scheme, host and port (keeping path
and query) to ``base_url`` just before it is sent; that is how the X integration
honours ``X_API_BASE_URL`` and how tests reach the X emulator. tweepy sets no
timeout of its own, so the adapter can also give every request a default one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

X_HOSTS = ("https://api.twitter.com", "https://api.x.com")


class BaseURLAdapter(HTTPAdapter):
    """An HTTPAdapter that re-targets every request at ``base_url``.

    ``timeout`` (seconds, or a ``(connect, read)`` pair) applies to requests sent
    without one of their own."""

    def __init__(
        self, base_url: str, *, timeout: float | tuple[float, float] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        target = urlsplit(base_url)
        if target.scheme not in ("http", "https") or not target.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._target = target

    def rewrite(self, url: str) -> str:
        original = urlsplit(url)
        path = self._target.path.rstrip("/") + original.path
        return urlunsplit((self._target.scheme, self._target.netloc, path, original.query, ""))

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        request.url = self.rewrite(request.url or "")
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def point_session_at(
    session: requests.Session,
    base_url: str,
    *,
    timeout: float | tuple[float, float] | None = None,
) -> None:
    """Make ``session`` send what it addresses to the X API hosts to ``base_url`` instead
    (``https://api.twitter.com`` itself is fine: the rewrite is then a no-op)."""
    adapter = BaseURLAdapter(base_url, timeout=timeout)
    for host in X_HOSTS:
        session.mount(host, adapter)
