"""X recent search (`GET /2/tweets/search/recent`) for keyword listening: posts that
name the council without an @ (services/listening.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from integrations.base import MentionPage
from integrations.x.network import EXPANSIONS, TWEET_FIELDS, USER_FIELDS, XNetwork

MAX_QUERY = 512  # recent search's query length limit


def term_query(term: str) -> str:
    """A phrase in quotes, a #hashtag or single word as it is."""
    return term if (term.startswith("#") or " " not in term) and '"' not in term \
        else f'"{term}"'


def queries(terms: Sequence[str], own_handle: str) -> list[str]:
    """The terms OR-ed into as few queries as fit 512 characters, retweets and the
    account's own posts left out."""
    tail = f" -is:retweet -from:{own_handle}"
    out: list[str] = []
    current: list[str] = []
    for t in terms:
        candidate = [*current, term_query(t)]
        if current and len(f"({' OR '.join(candidate)}){tail}") > MAX_QUERY:
            out.append(f"({' OR '.join(current)}){tail}")
            candidate = [term_query(t)]
        current = candidate
    if current:
        out.append(f"({' OR '.join(current)}){tail}")
    return out


def search(net: XNetwork, query: str, since_id: str | None,
           spend: Callable[[], None] = lambda: None) -> Iterator[MentionPage]:
    """Matches newer than `since_id`, newest first, one request per page. Each page's
    cursor is the newest id seen (X's ids grow with time)."""
    token: str | None = None
    newest = since_id
    while True:
        kwargs: dict[str, Any] = {"max_results": 100, "tweet_fields": TWEET_FIELDS,
                                  "user_fields": USER_FIELDS, "expansions": EXPANSIONS,
                                  "user_auth": True}
        if since_id:
            kwargs["since_id"] = since_id
        if token:
            kwargs["next_token"] = token
        spend()  # one request of the listening budget (raises when spent)
        resp: Any = net._call("searching recent posts",
                              lambda kw=kwargs: net.client.search_recent_tweets(query, **kw))  # type: ignore[misc]
        users = {str(u.id): u for u in (resp.includes or {}).get("users", [])}
        found = [net._mention(t, users) for t in (resp.data or [])]
        for m in found:
            if newest is None or int(m.external_id) > int(newest):
                newest = m.external_id
        yield MentionPage(found, cursor=newest)
        token = (resp.meta or {}).get("next_token")
        if not token:
            return
