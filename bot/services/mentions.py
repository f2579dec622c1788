"""The mention a command names: by its ref (M12), its link, or its network id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import slash
from bot.models import Mention


def find_mention(s: Session, ref: slash.MentionRef) -> Mention | None:
    if ref.mention_id is not None:
        return s.get(Mention, ref.mention_id)
    if ref.url is not None:
        return s.scalars(select(Mention).where(Mention.network == ref.network,
                                               Mention.url == ref.url)).first()
    return s.scalars(select(Mention).where(Mention.network == ref.network,
                                           Mention.external_id == ref.external_id)).first()
