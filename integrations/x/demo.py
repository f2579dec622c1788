"""The demo's stage on X (`commsdesk demo`'s public pane, through bot/demo/stage.py): the
council's accounts and residents on the X emulator, their posts as the pane shows them,
and the emulator's state saved and restored so a second demo resumes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.demo.stage import Account, Resident, SeedMention, StagePost
from integrations.x.emulator import Tweet, XEmulator, XUser

FOLLOWERS = 12000


def _dates_out(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}


class Stage:
    network = "x"
    handle_pattern = r"[A-Za-z0-9_]{1,15}"
    handle_rule = "1 to 15 letters, digits or underscores"
    max_length = 280

    def __init__(self) -> None:
        self.emulator = XEmulator()

    @property
    def root_url(self) -> str:
        return self.emulator.root_url

    def start(self) -> None:
        self.emulator.start()

    def stop(self) -> None:
        self.emulator.stop()

    def add_accounts(self, accounts: tuple[Account, ...]) -> None:
        for acc in accounts:
            if acc.user_id not in self.emulator.users:
                self.emulator.add_user(acc.user_id, acc.handle, acc.display,
                                       followers_count=FOLLOWERS)

    def seed(self, residents: tuple[Resident, ...], mentions: tuple[SeedMention, ...]) -> None:
        for r in residents:
            self.emulator.add_user(r.user_id, r.handle, r.name)
        ids = {r.handle: r.user_id for r in residents}
        now = datetime.now(UTC)
        for m in mentions:
            self.emulator.add_tweet(ids[m.resident], m.text,
                                    created_at=now - timedelta(minutes=m.minutes_ago))

    @staticmethod
    def _access_token(account: Account) -> str:
        return f"{account.user_id}-demo-access-token"

    def register(self, accounts: tuple[Account, ...]) -> None:
        for acc in accounts:
            self.emulator.register_credentials(acc.user_id, access_token=self._access_token(acc))

    def credentials(self, accounts: tuple[Account, ...]) -> dict[tuple[str, str],
                                                                 dict[str, str]]:
        return {(self.network, a.credentials): {
            "consumer_key": f"demo-ck-{a.name}", "consumer_secret": f"demo-cs-{a.name}",
            "access_token": self._access_token(a), "access_token_secret": f"demo-ats-{a.name}"}
            for a in accounts}

    def env(self) -> dict[str, Any]:
        return {"x_api_base_url": self.emulator.root_url}

    def add_mention(self, account: Account, handle: str, text: str) -> str:
        return str(self.emulator.add_mention(account.user_id, handle, text)["id"])

    def posts(self) -> list[StagePost]:
        x = self.emulator
        with x._lock:
            tweets = [t for t in x.tweets.values() if not t.deleted]
            users = {u.id: u for u in x.users.values()}
        out = []
        for t in sorted(tweets, key=lambda t: int(t.id)):
            user = users.get(t.author_id)
            parent = next((r["id"] for r in t.referenced_tweets if r["type"] == "replied_to"),
                          None)
            out.append(StagePost(t.id, user.name if user else t.author_id,
                                 user.username if user else t.author_id, t.author_id,
                                 t.created_at, t.text, parent,
                                 frozenset(m["id"] for m in t.mentions if m.get("id")),
                                 frozenset(m["username"].lower() for m in t.mentions)))
        return out

    def dump(self) -> dict[str, Any]:
        x = self.emulator
        with x._lock:
            return {
                "users": [_dates_out(dataclasses.asdict(u)) for u in x.users.values()],
                "tweets": [_dates_out(dataclasses.asdict(t)) for t in x.tweets.values()],
                "last_id": x._last_id,
            }

    def load(self, data: dict[str, Any]) -> None:
        x = self.emulator
        with x._lock:
            x.users = {u["id"]: XUser(**{**u,
                                         "created_at": datetime.fromisoformat(u["created_at"])})
                       for u in data["users"]}
            x.tweets = {t["id"]: Tweet(**{**t,
                                          "created_at": datetime.fromisoformat(t["created_at"])})
                        for t in data["tweets"]}
            x._last_id = int(data["last_id"])
