"""Mastodon listening (services/listening.py): a #hashtag through its timeline
(`GET /api/v1/timelines/tag/:hashtag`), a phrase or word through status search
(`GET /api/v2/search?type=statuses`, which finds what the instance has indexed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from integrations.base import MentionPage
from integrations.mastodon.network import MastodonNetwork


def queries(terms: Sequence[str], own_handle: str) -> list[str]:
    return list(terms)


def _newer(a: str | None, b: str) -> str:
    if a is None:
        return b
    return a if (len(a), a) >= (len(b), b) else b


def search(net: MastodonNetwork, query: str, since_id: str | None,
           spend: Callable[[], None] = lambda: None) -> Iterator[MentionPage]:
    """Statuses newer than `since_id` (status ids grow with time), one request per page;
    direct and followers-only statuses are never listened to."""
    own = net.account_user_id()
    max_id: str | None = None
    newest = since_id
    while True:
        spend()  # one request of the listening budget (raises when spent)
        if query.startswith("#"):
            kw: dict[str, Any] = {"limit": 40}
            if since_id:
                kw["since_id"] = since_id
            if max_id:
                kw["max_id"] = max_id
            statuses = net._call("reading a hashtag timeline",
                                 lambda k=kw: net.api.timeline_hashtag(query[1:], **k))  # type: ignore[misc]
        else:
            kw = {"result_type": "statuses", "resolve": False, "limit": 40}
            if since_id:
                kw["min_id"] = since_id
            if max_id:
                kw["max_id"] = max_id
            result = net._call("searching statuses",
                               lambda k=kw: net.api.search_v2(query, **k))  # type: ignore[misc]
            statuses = list((result or {}).get("statuses") or [])
        found = []
        for st in statuses or []:
            sid = str(st["id"])
            newest = _newer(newest, sid)
            max_id = sid if max_id is None or _newer(max_id, sid) == max_id else max_id
            if str((st.get("account") or {}).get("id")) == own:
                continue
            if st.get("visibility") not in (None, "public", "unlisted"):
                continue
            found.append(net._mention(st))
        yield MentionPage(found, cursor=newest)
        if len(statuses or []) < 40:
            return
