"""The configured accounts in the database: synced with the config file, their ids
remembered once every account is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.config import Config
from bot.models import Account
from bot.services import audit

if TYPE_CHECKING:
    from bot.runtime import Runtime


def insert_for(session: Session) -> Any:
    """The dialect's INSERT (both take ON CONFLICT DO NOTHING)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def sync_accounts(session: Session, config: Config) -> dict[str, Account]:
    """Make the accounts table match the config (new ones added, handles refreshed).

    Safe when several threads or replicas do it at once: the name is unique and
    an insert that loses the race does nothing.
    """
    existing = {a.name: a for a in session.scalars(select(Account))}
    for acc in config.accounts:
        row = existing.get(acc.name)
        if row is None:
            new_id = session.execute(
                insert_for(session)(Account)
                .values(name=acc.name, network=acc.network, handle=acc.handle,
                        external_user_id=acc.user_id)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Account.id)
            ).scalar()
            if new_id is not None:
                audit.record(session, actor="system", action="account.configured",
                             subject_kind="account", subject_id=new_id,
                             details={"name": acc.name, "network": acc.network,
                                      "handle": acc.handle})
            existing[acc.name] = session.scalars(
                select(Account).where(Account.name == acc.name)).one()
        elif row.handle != acc.handle or (acc.user_id and row.external_user_id != acc.user_id):
            row.handle = acc.handle
            row.external_user_id = acc.user_id or row.external_user_id
    return existing


def account_ids(rt: Runtime, session: Session) -> dict[str, int]:
    """Account name -> id. Synced with the config until every account is in the database,
    then remembered: accounts are never removed, so ids never change (and the hot path
    stays cheap). Ids this transaction inserts are not remembered yet: until it commits,
    another thread's rows could not refer to them."""
    cached: dict[str, int] | None = rt.extras.get("account_ids")
    if cached is not None:
        return cached
    committed = set(session.scalars(select(Account.name)))
    ids = {name: a.id for name, a in sync_accounts(session, rt.settings.config).items()}
    if committed >= set(ids):
        rt.extras["account_ids"] = ids
    return ids
