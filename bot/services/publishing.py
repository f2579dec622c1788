"""Publishing approved drafts exactly once, even when networks are slow, silent or lie.

The draft moves approved -> publishing under a fenced claim (services/publication.py: a
token; renewing and recording are compare-and-sets on it) with the intent recorded
before the network is called. A lease is renewed while its publish is in flight
(`_Heartbeat`), and no network wait sleeps minutes inside it: a rate limit whose reset is
further away than INLINE_WAIT releases the draft with a `retry_at`, and the approval
message says until when.

A timeout, dropped connection, 5xx or lost answer leaves the outcome *unknown*: before
any further attempt (the last one, a later run and a manual Retry included) the post is
looked for, by the draft's own key where the network keeps one (Mastodon's
Idempotency-Key, Bluesky's record key) and on the account's timeline as the network
shows it. Only a clear refusal (a 4xx that means no) is `failed`; a claim taken over from
a worker whose lease ran out is reconciled the same way.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select, update

from bot import logs
from bot.blockkit.alerts import NETWORK_LABEL
from bot.blockkit.escape import escape
from bot.clock import now
from bot.db import reading, transaction
from bot.faults import crash_point
from bot.models import Account, Draft, Mention, PublishAttempt
from bot.runtime import Runtime
from bot.services import draft_states, governance, publication
from bot.services.draft_surfaces import post_link, refresh_draft
from bot.services.outbox import enqueue
from bot.services.publication import Claim
from integrations.base import (
    Capability,
    Image,
    Network,
    NetworkError,
    PermanentError,
    Published,
)
from integrations.common import wait_limit

log = logs.get("commsdesk.publishing")

MAX_ATTEMPTS = 4
INLINE_WAIT = 30.0  # the longest rate-limit wait slept while holding a claim
SETTLE = timedelta(seconds=60)  # how long a call of a worker whose lease ran out may still land
UNKNOWN_RETRY = timedelta(minutes=2)  # a run that could not tell whether it posted: again then
LANDING = timedelta(seconds=60)  # after we stopped waiting for an answer: time to show the post


@dataclass(frozen=True)
class _Job:
    text: str
    in_reply_to: str | None
    images: list[Image]
    key: str
    not_before: datetime
    network: Network
    label: str


class _Lost(Exception):
    """This worker's claim was taken over: it records nothing and stops."""


class _Heartbeat:
    """Renews the leases of this publisher's publishes in flight, on a timer and whenever
    the clock says a renewal is due (a clock that jumped included)."""

    def __init__(self, publisher: Publisher):
        self.p = publisher
        self.claims: dict[int, tuple[Claim, datetime]] = {}
        self.lost: set[int] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, c: Claim) -> None:
        with self.lock:
            self.claims[c.draft_id] = (c, now())
            self.lost.discard(c.draft_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="publish-heartbeat",
                                               daemon=True)
                self.thread.start()

    def remove(self, c: Claim) -> None:
        with self.lock:
            self.claims.pop(c.draft_id, None)
            self.lost.discard(c.draft_id)

    def is_lost(self, c: Claim) -> bool:
        with self.lock:
            return c.draft_id in self.lost

    def _loop(self) -> None:
        while not self.stop.wait(self.p.tick):
            with self.lock:
                due = [c for c, at in self.claims.values()
                       if now() - at >= self.p.renew_every]
            for c in due:
                try:
                    ok = self.p.renew(c)
                except Exception:
                    log.exception("renewing a publish lease failed", draft_id=c.draft_id)
                    continue
                with self.lock:
                    if c.draft_id in self.claims:
                        self.claims[c.draft_id] = (c, now())
                        if not ok:
                            self.lost.add(c.draft_id)


class Publisher:
    def __init__(self, rt: Runtime, owner: str | None = None, *, workers: int = 4,
                 sleep: Callable[[float], None] = time.sleep,
                 renew_every: timedelta = publication.LEASE / 5, tick: float = 1.0):
        self.rt = rt
        self.owner = owner or f"publisher-{uuid.uuid4().hex[:8]}"
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="publish")
        self._sleep = sleep
        self.renew_every = renew_every
        self.tick = tick
        self.heartbeat = _Heartbeat(self)

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
        self.heartbeat.stop.set()

    # ------------------------------------------------------------ entry points

    def publish(self, draft_id: int) -> None:
        """Publish an approved draft (no-op when someone else already has it, or when it
        waits for a retry time)."""
        with transaction(self.rt.sessions) as s:
            draft = s.get(Draft, draft_id)
            if draft is None or draft.state != "approved":
                return
            held = governance.hold_reason(self.rt, s, draft)
            if held is not None:
                log.info("publishing held", draft_id=draft_id, reason=held)
                return
            claim = publication.claim(s, draft_id, self.owner)
            if claim is None:
                return
            refresh_draft(s, s.get_one(Draft, draft_id))
        self.rt.kick_outbox()
        self._run(claim)

    def sweep(self) -> int:
        """Publish what is due: scheduled posts whose time has come, approvals whose
        publishing never started (a crash right after approving), drafts whose retry time
        has come, and `publishing` drafts whose lease ran out (taken over, reconciled
        first). Returns how many it took."""
        t = now()
        with reading(self.rt.sessions) as s:
            due = list(s.scalars(select(Draft.id).where(*publication.due(t))))
            stuck = list(s.scalars(select(Draft.id).where(
                Draft.state == "publishing", Draft.lease_until < t)))
        for draft_id in due:
            self.publish(draft_id)
        for draft_id in stuck:
            with transaction(self.rt.sessions) as s:
                old = s.get(Draft, draft_id)
                expired = old.lease_until if old is not None else None
                claim = publication.reclaim(s, draft_id, self.owner)
            if claim is not None:
                self._run(claim, taken_over_at=expired)
        return len(due) + len(stuck)

    def renew(self, c: Claim) -> bool:
        with transaction(self.rt.sessions) as s:
            return publication.renew(s, c.draft_id, c.token)

    # ------------------------------------------------------------ the work

    def _run(self, c: Claim, *, taken_over_at: datetime | None = None) -> None:
        self.heartbeat.add(c)
        try:
            job = self._job(c)
            if job is None:
                return
            with wait_limit(INLINE_WAIT):
                self._attempts(c, job, taken_over_at)
        except _Lost:
            log.warning("publish claim taken over by another worker; recording nothing",
                        draft_id=c.draft_id)
        finally:
            self.heartbeat.remove(c)

    def _job(self, c: Claim) -> _Job | None:
        with self.rt.sessions() as s:
            draft = s.get_one(Draft, c.draft_id)
            mention = s.get(Mention, draft.mention_id) if draft.mention_id else None
            first = s.scalar(select(PublishAttempt.started_at)
                             .where(PublishAttempt.draft_id == c.draft_id)
                             .order_by(PublishAttempt.id).limit(1))
            account_name = s.get_one(Account, draft.account_id).name
            images = [Image(i.data, i.alt_text or "", i.filename, i.mime_type)
                      for i in draft_states.images(s, c.draft_id)]
            job_text, key = draft.text, publication.publish_key(draft)
            in_reply_to = mention.external_id if mention else None
        network = self.rt.network(account_name)
        label = NETWORK_LABEL.get(network.network, network.network)
        if images and Capability.MEDIA not in network.capabilities:
            self._failed(c, f"{network.network} does not take images from commsdesk; remove "
                         "the image or draft it for another account", transient=False)
            return None
        if images and in_reply_to and Capability.REPLY_MEDIA not in network.capabilities:
            self._failed(c, f"a reply on {network.network} cannot carry images; post the "
                         "image as a new post instead", transient=False)
            return None
        not_before = (first or now()) - timedelta(minutes=15)  # room for clock skew
        return _Job(job_text, in_reply_to, images, key, not_before, network, label)

    def _hold_reason(self, c: Claim) -> str | None:
        with reading(self.rt.sessions) as s:
            return governance.hold_reason(self.rt, s, s.get_one(Draft, c.draft_id))

    def _look(self, c: Claim, job: _Job) -> Published | None:
        """The post, if it exists: a post id a fenced-off worker got back, else the network
        (by our key where it keeps one, else the timeline as it shows posts)."""
        with self.rt.sessions() as s:
            known = publication.post_known(s, c.draft_id)
        if known is not None:
            return Published(known, job.network.post_url(known))
        return job.network.find_published(job.text, in_reply_to=job.in_reply_to,
                                          not_before=job.not_before, key=job.key)

    def _attempts(self, c: Claim, job: _Job, taken_over_at: datetime | None) -> None:
        unknown = c.look_first  # an earlier attempt may have posted
        error: NetworkError | None = None
        media = {"images": job.images} if job.images else {}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            posting = False
            try:
                if unknown:
                    found = self._look(c, job)
                    if found is not None:
                        self._published(c, found, reconciled=True)
                        return
                    if taken_over_at is not None and now() < taken_over_at + SETTLE:
                        # the worker whose lease ran out may still have a call landing
                        self._release(c, taken_over_at + SETTLE, "checking whether an "
                                      f"interrupted attempt reached {job.label}; trying again "
                                      "at {time}", outcome="unknown")
                        return
                    taken_over_at = None
                    # not posted: posting now is a new decision, which a pause or a
                    # block that came meanwhile holds (publish() checks before claiming)
                    if self._hold_reason(c) is not None:
                        self._release(c, now(), f"nothing reached {job.label}; it waits while "
                                      "publishing is held (the card says why)",
                                      outcome="unknown")
                        return
                self._fence(c)
                crash_point("publish:before_network")
                posting = True
                published = job.network.publish(job.text, in_reply_to=job.in_reply_to,
                                                key=job.key, **media)
                crash_point("publish:after_network")
            except PermanentError as exc:
                if unknown and self._found_after_refusal(c, job):
                    return
                self._failed(c, str(exc), transient=False)
                return
            except NetworkError as exc:
                error = exc
                if exc.retry_after is not None:  # rate limited: refused, nothing posted
                    if exc.retry_after > INLINE_WAIT:
                        self._release(c, now() + timedelta(seconds=exc.retry_after),
                                      f"waiting for {job.label}'s rate limit until {{time}}",
                                      outcome="rate_limited")
                        return
                    log.warning("publish rate limited", draft_id=c.draft_id, attempt=attempt,
                                wait=exc.retry_after)
                    self._sleep(exc.retry_after)
                    continue
                unknown = True  # timeout, reset, 5xx, lost answer: it may be live
                if posting and getattr(exc, "timed_out", False):
                    # we gave up waiting, the network may still be making the post: a look
                    # now proves nothing, so look once it has had time to show it
                    self._release(c, now() + LANDING, f"{job.label} did not answer in time; "
                                  "checking for the post at {time}", outcome="unknown")
                    return
                log.warning("publish attempt failed", draft_id=c.draft_id, attempt=attempt,
                            error=str(exc))
                self._sleep(min(30.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + random.random()))
                continue
            self._published(c, published, reconciled=False)
            return
        # every attempt left the outcome unknown (or rate limited): one last look
        try:
            found = self._look(c, job) if unknown else None
        except NetworkError as exc:
            self._release(c, now() + UNKNOWN_RETRY, f"{job.label} did not answer ({exc}); "
                          "checking again at {time}", outcome="unknown")
            return
        if found is not None:
            self._published(c, found, reconciled=True)
            return
        self._failed(c, str(error) if error else "no answer", transient=True)

    def _found_after_refusal(self, c: Claim, job: _Job) -> bool:
        """A refusal after an unknown outcome may be the network refusing a duplicate of the
        post it did make (X's 403 on duplicate content): look once more."""
        try:
            found = self._look(c, job)
        except NetworkError:
            return False
        if found is None:
            return False
        self._published(c, found, reconciled=True)
        return True

    def _fence(self, c: Claim) -> None:
        """Right before a network call: still ours? (renews the lease too)"""
        if self.heartbeat.is_lost(c) or not self.renew(c):
            with transaction(self.rt.sessions) as s:
                publication.note_lost_lease(s, c, None)
            raise _Lost()

    def _published(self, c: Claim, pub: Published, *, reconciled: bool) -> None:
        with transaction(self.rt.sessions) as s:
            if not publication.mark_published(s, c, pub.external_id, pub.url,
                                              reconciled=reconciled):
                publication.note_lost_lease(s, c, pub.external_id)
                log.warning("published, but the claim was taken over: the post id is kept "
                            "for the new holder", draft_id=c.draft_id,
                            external_id=pub.external_id)
                return
            draft = s.get_one(Draft, c.draft_id)
            if draft.mention_id is not None:
                s.execute(update(Mention).where(Mention.id == draft.mention_id)
                          .values(state="replied"))
            enqueue(s, draft.approval_channel or "", "notice", draft_id=c.draft_id, payload={
                "in_draft_thread": True,
                "text": f":white_check_mark: Published {draft.ref}: "
                        f"{post_link(self.rt, s, draft, pub.url)}"})
            refresh_draft(s, draft)
        self.rt.kick_outbox()
        log.info("published", draft_id=c.draft_id, external_id=pub.external_id)

    def _release(self, c: Claim, retry_at: datetime, reason: str, *, outcome: str) -> None:
        """Hand the draft back (approved, not before `retry_at`), saying why and until when."""
        local = retry_at.astimezone(self.rt.settings.config.tz)
        reason = logs.redact(reason.replace("{time}", f"{local:%H:%M}"))  # stored and shown
        with transaction(self.rt.sessions) as s:
            if not publication.release(s, c, retry_at, reason, outcome=outcome):
                publication.note_lost_lease(s, c, None)
                return
            draft = s.get_one(Draft, c.draft_id)
            enqueue(s, draft.approval_channel or "", "notice", draft_id=c.draft_id, payload={
                "in_draft_thread": True,
                "text": f":hourglass_flowing_sand: {draft.ref}: {escape(reason)}."})
            refresh_draft(s, draft)
        self.rt.kick_outbox()
        log.info("publish deferred", draft_id=c.draft_id, retry_at=retry_at.isoformat(),
                 reason=reason)

    def _failed(self, c: Claim, error: str, *, transient: bool) -> None:
        error = logs.redact(error)  # stored, audited and shown: never a token
        with transaction(self.rt.sessions) as s:
            if not publication.mark_failed(s, c, error, transient=transient):
                publication.note_lost_lease(s, c, None)
                return
            draft = s.get_one(Draft, c.draft_id)
            hint = ("It may work later: an approver can press *Retry* (it checks the "
                    "network for the post first)." if transient else
                    "An approver can press *Retry* after fixing the cause (or edit the draft).")
            enqueue(s, draft.approval_channel or "", "notice", draft_id=c.draft_id, payload={
                "in_draft_thread": True,
                "text": f":warning: Publishing {draft.ref} failed: {escape(error)}. {hint}"})
            refresh_draft(s, draft)
        self.rt.kick_outbox()
        log.warning("publish failed", draft_id=c.draft_id, error=error)
