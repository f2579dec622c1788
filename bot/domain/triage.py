"""Triage rules, pure: a mention's priority (urgent keywords, safeguarding) and sentiment
(VADER), the SLA hours that follow from them, and the corrections staff may pick."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.domain.routing import keyword_pattern

URGENT, NORMAL = "urgent", "normal"
PRIORITIES = (URGENT, NORMAL)
SENTIMENTS = ("negative", "neutral", "positive")

_analyzer: Any = None
_analyzer_lock = threading.Lock()


def _vader() -> Any:
    global _analyzer
    with _analyzer_lock:
        if _analyzer is None:
            # lazy: VADER's lexicon takes a moment to load and most commands never need it
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _analyzer = SentimentIntensityAnalyzer()
        return _analyzer


def sentiment(text: str) -> tuple[str, float]:
    score = float(_vader().polarity_scores(text[:5000])["compound"])
    if score >= 0.05:
        return "positive", score
    if score <= -0.05:
        return "negative", score
    return "neutral", score


def priority(cfg: Config, services: Sequence[str], text: str, escalated: bool
             ) -> tuple[str, str | None]:
    if escalated:
        return URGENT, "safeguarding term"
    named = [sv for sv in cfg.services if sv.name in services] or list(cfg.services)
    for sv in named:
        pattern = keyword_pattern(sv.urgent_keywords)
        m = pattern.search(text) if pattern is not None else None
        if m is not None:
            return URGENT, f"urgent keyword “{m.group(0)}”"
    return NORMAL, None


def urgent_sla_hours(cfg: Config, service: str | None) -> float:
    svc = next((x for x in cfg.services if x.name == service), None)
    if svc is not None and svc.urgent_sla_hours is not None:
        return svc.urgent_sla_hours
    return cfg.insight.urgent_sla_hours


def service_sla_hours(cfg: Config, service: str | None) -> float:
    """The service's SLA for a normal mention (else `[insight]`'s default)."""
    svc = next((x for x in cfg.services if x.name == service), None)
    if svc is not None and svc.sla_hours is not None:
        return svc.sla_hours
    return cfg.insight.default_sla_hours


def sla_hours(cfg: Config, service: str | None, prio: str | None) -> float:
    base = service_sla_hours(cfg, service)
    return min(base, urgent_sla_hours(cfg, service)) if prio == URGENT else base


@dataclass(frozen=True)
class Correction:
    alert_id: int
    field: str  # priority|sentiment
    value: str


def parse_choice(value: str) -> Correction | None:
    try:
        alert, field, new = value.split(":", 2)
        alert_id = int(alert)
    except ValueError:
        return None
    allowed = PRIORITIES if field == "priority" else SENTIMENTS if field == "sentiment" else ()
    return Correction(alert_id, field, new) if new in allowed else None
