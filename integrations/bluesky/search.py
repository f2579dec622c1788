"""Bluesky post search (`app.bsky.feed.searchPosts`, sort=latest) for keyword listening
(services/listening.py): one query per term, a phrase in quotes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from integrations.base import MentionPage
from integrations.bluesky import richtext
from integrations.bluesky.network import BlueskyNetwork
from integrations.common import parse_time

TIME_CURSOR = "t:"


def queries(terms: Sequence[str], own_handle: str) -> list[str]:
    return [term if term.startswith("#") or " " not in term else f'"{term}"' for term in terms]


def search(net: BlueskyNetwork, query: str, since: str | None,
           spend: Callable[[], None] = lambda: None) -> Iterator[MentionPage]:
    """Posts matching `query` indexed since the cursor (`t:<indexedAt>`, the newest seen),
    newest first, one request per page (the API's `cursor` pages back in time). Posts
    indexed at the cursor's own moment come again and are de-duplicated by their id."""
    since_at = parse_time(since[len(TIME_CURSOR):]) if since and since.startswith(
        TIME_CURSOR) else None
    newest: tuple[Any, str] | None = None
    cursor: str | None = None
    own = net.account_user_id()
    while True:
        params: dict[str, Any] = {"q": query, "sort": "latest", "limit": 50}
        if since_at is not None:
            params["since"] = since[len(TIME_CURSOR):]  # type: ignore[index]
        if cursor:
            params["cursor"] = cursor
        spend()  # one request of the listening budget (raises when spent)
        data = net._call("searching posts",
                         lambda p=params: net._xrpc("GET", "app.bsky.feed.searchPosts",  # type: ignore[misc]
                                                    params=p))
        found = []
        reached = False
        for post in data.get("posts") or []:
            indexed = parse_time(post.get("indexedAt"))
            if since_at is not None and indexed is not None and indexed < since_at:
                reached = True
                continue
            if indexed is not None and (newest is None or indexed > newest[0]):
                newest = (indexed, str(post["indexedAt"]))
            if (post.get("author") or {}).get("did") == own:
                continue  # the council's own post
            try:
                external_id = richtext.compact_id(post["uri"])
            except (KeyError, ValueError):
                continue
            found.append(net._mention({"record": post.get("record") or {},
                                       "author": post.get("author") or {},
                                       "indexedAt": post.get("indexedAt")}, external_id))
        yield MentionPage(found, cursor=f"{TIME_CURSOR}{newest[1]}" if newest else since)
        cursor = data.get("cursor")
        if reached or not cursor or not data.get("posts"):
            return
