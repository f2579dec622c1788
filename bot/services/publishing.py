"""Publishing approved drafts exactly once.

The draft moves approved -> publishing (compare-and-set, intent recorded)
before the network is called. Transient failures are retried with backoff;
when an answer is lost (timeout, dropped connection, 5xx) the account's
timeline is checked before trying again, and a draft found in `publishing`
after a crash is reconciled the same way rather than blindly re-sent.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import structlog
from sqlalchemy import or_, select, update

from commsdesk import logs
from commsdesk.blockkit.escape import escape
from commsdesk.clock import now
from commsdesk.db import reading, transaction
from commsdesk.domain import drafts
from commsdesk.faults import crash_point
from commsdesk.integrations.base import (
    Capability,
    Image,
    NetworkError,
    PermanentError,
    Published,
)
from commsdesk.models import Account, Draft, Mention, PublishAttempt
from commsdesk.runtime import Runtime
from commsdesk.services import governance
from commsdesk.services.drafting import refresh_draft
from commsdesk.services.outbox import enqueue

log = logs.get("commsdesk.publishing")

MAX_ATTEMPTS = 4


class Publisher:
    def __init__(self, rt: Runtime, owner: str | None = None, *, workers: int = 4,
                 sleep: Callable[[float], None] = time.sleep):
        self.rt = rt
        self.owner = owner or f"publisher-{uuid.uuid4().hex[:8]}"
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish")
        self._sleep = sleep

    def submit(self, draft_id: int) -> None:
        self.pool.submit(self._safe, self.publish, draft_id)

    def submit_sweep(self) -> None:
        self.pool.submit(self._safe, lambda _: self.sweep(), 0)

    def _safe(self, fn: Callable[[int], None], draft_id: int) -> None:
        with structlog.contextvars.bound_contextvars(draft_id=draft_id):
            try:
                fn(draft_id)
            except Exception:
                log.exception("publishing crashed")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)

    # ------------------------------------------------------------ entry points

    def publish(self, draft_id: int) -> None:
        """Publish an approved draft (no-op when someone else already has it)."""
        with transaction(self.rt.sessions) as s:
            draft = s.get(Draft, draft_id)
            if draft is None or draft.state != "approved":
                return
            held = governance.hold_reason(self.rt, s, draft)
            if held is not None:
                log.info("publishing held", draft_id=draft_id, reason=held)
                return
            attempt = drafts.claim_for_publishing(s, draft_id, self.owner)
            if attempt is None:
                return
            refresh_draft(s, s.get_one(Draft, draft_id))
            attempt_id = attempt.id
        self.rt.kick_outbox()
        self._run(draft_id, attempt_id, reconcile_first=False)

    def sweep(self) -> int:
        """Publish what is due: scheduled posts whose time has come, approvals whose
        publishing never started (a crash right after approving), and drafts stuck
        in `publishing` after a crash (reconciled first). Returns how many it took."""
        t = now()
        with reading(self.rt.sessions) as s:
            due = list(s.scalars(select(Draft.id).where(
                Draft.state == "approved",
                or_(Draft.scheduled_for.is_(None), Draft.scheduled_for <= t))))
            stuck = list(s.scalars(select(Draft.id).where(
                Draft.state == "publishing", Draft.lease_until < t)))
        for draft_id in due:
            self.publish(draft_id)
        for draft_id in stuck:
            with transaction(self.rt.sessions) as s:
                attempt = drafts.reclaim_stuck(s, draft_id, self.owner)
                attempt_id = attempt.id if attempt else None
            if attempt_id is not None:
                self._run(draft_id, attempt_id, reconcile_first=True)
        return len(due) + len(stuck)

    # ------------------------------------------------------------ the work

    def _run(self, draft_id: int, attempt_id: int, *, reconcile_first: bool) -> None:
        with self.rt.sessions() as s:
            draft = s.get_one(Draft, draft_id)
            mention = s.get(Mention, draft.mention_id) if draft.mention_id else None
            first = s.scalar(select(PublishAttempt.started_at)
                             .where(PublishAttempt.draft_id == draft_id)
                             .order_by(PublishAttempt.id).limit(1))
            account_name = s.get_one(Account, draft.account_id).name
            text = draft.text
            in_reply_to = mention.external_id if mention else None
            images = [Image(i.data, i.alt_text or "", i.filename, i.mime_type)
                      for i in drafts.images(s, draft_id)]
        network = self.rt.network(account_name)
        if images and Capability.MEDIA not in network.capabilities:
            self._failed(draft_id, attempt_id, f"{network.network} does not take images from "
                         "commsdesk; remove the image or draft it for another account",
                         transient=False)
            return
        if images and in_reply_to and Capability.REPLY_MEDIA not in network.capabilities:
            self._failed(draft_id, attempt_id, f"a reply on {network.network} cannot carry "
                         "images; post the image as a new post instead", transient=False)
            return
        media = {"images": images} if images else {}
        not_before = (first or now()) - timedelta(minutes=15)  # room for clock skew
        error: NetworkError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                if reconcile_first or (error is not None and error.transient):
                    found = network.find_published(text, in_reply_to=in_reply_to,
                                                   not_before=not_before)
                    if found is not None:
                        self._published(draft_id, attempt_id, found, reconciled=True)
                        return
                crash_point("publish:before_network")
                published = network.publish(text, in_reply_to=in_reply_to, **media)
                crash_point("publish:after_network")
            except PermanentError as exc:
                self._failed(draft_id, attempt_id, str(exc), transient=False)
                return
            except NetworkError as exc:
                error = exc
                reconcile_first = False
                log.warning("publish attempt failed", draft_id=draft_id, attempt=attempt,
                            error=str(exc))
                if attempt < MAX_ATTEMPTS:
                    wait = exc.retry_after or min(30.0, 0.5 * 2 ** (attempt - 1))
                    self._sleep(wait * (0.5 + random.random()))
                continue
            self._published(draft_id, attempt_id, published, reconciled=False)
            return
        self._failed(draft_id, attempt_id, str(error), transient=True)

    def _published(self, draft_id: int, attempt_id: int, pub: Published, *,
                   reconciled: bool) -> None:
        with transaction(self.rt.sessions) as s:
            if not drafts.mark_published(s, draft_id, attempt_id, pub.external_id, pub.url,
                                         reconciled=reconciled):
                return
            draft = s.get_one(Draft, draft_id)
            if draft.mention_id is not None:
                s.execute(update(Mention).where(Mention.id == draft.mention_id)
                          .values(state="replied"))
            enqueue(s, draft.approval_channel or "", "notice", draft_id=draft_id, payload={
                "in_draft_thread": True,
                "text": f":white_check_mark: Published {draft.ref}: {pub.url}"})
            refresh_draft(s, draft)
        self.rt.kick_outbox()
        log.info("published", draft_id=draft_id, external_id=pub.external_id)

    def _failed(self, draft_id: int, attempt_id: int, error: str, *, transient: bool) -> None:
        with transaction(self.rt.sessions) as s:
            if not drafts.mark_failed(s, draft_id, attempt_id, error, transient=transient):
                return
            draft = s.get_one(Draft, draft_id)
            hint = ("It may work later: an approver can press *Retry*." if transient else
                    "An approver can press *Retry* after fixing the cause (or edit the draft).")
            enqueue(s, draft.approval_channel or "", "notice", draft_id=draft_id, payload={
                "in_draft_thread": True,
                "text": f":warning: Publishing {draft.ref} failed: {escape(error)}. {hint}"})
            refresh_draft(s, draft)
        self.rt.kick_outbox()
        log.warning("publish failed", draft_id=draft_id, error=error)
