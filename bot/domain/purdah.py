"""Pre-election periods: which apply to an account on a day. Pure."""

from __future__ import annotations

from datetime import date

from bot.config import Config, PurdahPeriod


def active_periods(cfg: Config, account: str, day: date) -> list[PurdahPeriod]:
    return [p for p in cfg.purdah
            if p.start <= day <= p.end and (not p.accounts or account in p.accounts)]
