"""Drafts and their approval state machine (`bot/domain/draft_machine.py`: which move
takes a draft from which states to which). Every move is one conditional UPDATE
(compare-and-set) in the caller's transaction, so retries, double reactions,
concurrent approvers and replicas can never move a draft twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.clock import now
from bot.domain import draft_machine as machine
from bot.models import Approval, Draft, DraftImage, DraftVersion
from bot.services import audit


@dataclass(frozen=True)
class ApprovalPolicy:
    """What approving this draft takes, worked out from roles, periods and house style."""

    may_approve: bool
    refusal: str = ""
    required: int = 1  # distinct approvers needed
    special_group: frozenset[str] | None = None  # one approval must come from this group
    special_label: str = ""
    blockers: tuple[str, ...] = ()  # reasons it cannot be approved now
    step: int | None = None  # approval steps: the step (0-based) this approval is for


@dataclass(frozen=True)
class Decision:
    ok: bool
    message: str
    draft_id: int | None = None
    publish_now: bool = False


def _cas(s: Session, draft_id: int, move: str, **values: Any) -> bool:
    """Make `move` (draft_machine.MOVES) if the draft is still in one of its sources."""
    values.setdefault("updated_at", now())
    res = s.execute(update(Draft).where(Draft.id == draft_id,
                                        Draft.state.in_(machine.sources(move)))
                    .values(state=machine.target(move), **values))
    return res.rowcount == 1


def create(
    s: Session,
    *,
    account_id: int,
    author: str,
    text: str,
    kind: str,
    mention_id: int | None = None,
    scheduled_for: datetime | None = None,
    approval_channel: str,
    via: str,
) -> Draft:
    draft = Draft(account_id=account_id, author=author, text=text, kind=kind,
                  mention_id=mention_id, scheduled_for=scheduled_for,
                  approval_channel=approval_channel, state="pending", version=1)
    s.add(draft)
    s.flush()
    s.add(DraftVersion(draft_id=draft.id, version=1, text=text, edited_by=author))
    audit.record(s, actor=author, action="draft.created", subject_kind="draft",
                 subject_id=draft.id, details={
                     "kind": kind, "account_id": account_id, "mention_id": mention_id,
                     "text": text, "via": via,
                     "scheduled_for": scheduled_for.isoformat() if scheduled_for else None})
    return draft


def edit(s: Session, draft_id: int, user: str, text: str) -> Decision:
    draft = s.get(Draft, draft_id)
    if draft is None:
        return Decision(False, "That draft no longer exists.")
    if not machine.can("edit", draft.state):
        return Decision(False, f"{draft.ref} is {draft.state} and can no longer be edited.")
    was = draft.state
    new_version = draft.version + 1
    res = s.execute(update(Draft)
                    .where(Draft.id == draft_id, Draft.version == draft.version,
                           Draft.state == was)
                    .values(text=text, version=new_version, state=machine.target("edit"),
                            approved_by=None,
                            approved_at=None, last_error=None, updated_at=now()))
    if res.rowcount != 1:
        return Decision(False, f"{draft.ref} changed while you were editing; try again.")
    s.add(DraftVersion(draft_id=draft_id, version=new_version, text=text, edited_by=user))
    audit.record(s, actor=user, action="draft.edited", subject_kind="draft", subject_id=draft_id,
                 details={"version": new_version, "text": text, "previous_state": was})
    if was == "approved":
        s.add(Approval(draft_id=draft_id, draft_version=new_version, user_id=user,
                       decision="withdrawn", via="edit", reason="edited after approval"))
        audit.record(s, actor=user, action="draft.approval_withdrawn", subject_kind="draft",
                     subject_id=draft_id, details={"reason": "edited after approval"})
    return Decision(True, f"{draft.ref} updated to version {new_version}"
                    + ("; its approval was withdrawn, so it needs approving again."
                       if was == "approved" else "."), draft_id)


def _new_version(s: Session, draft: Draft, user: str, reason: str) -> int | None:
    """Move the draft to a new version (same text) back to pending, withdrawing an approval
    as an edit does. None when it changed meanwhile."""
    was, new_version = draft.state, draft.version + 1
    res = s.execute(update(Draft)
                    .where(Draft.id == draft.id, Draft.version == draft.version,
                           Draft.state == was)
                    .values(version=new_version, state=machine.target("edit"), approved_by=None,
                            approved_at=None, last_error=None, updated_at=now()))
    if res.rowcount != 1:
        return None
    s.add(DraftVersion(draft_id=draft.id, version=new_version, text=draft.text, edited_by=user))
    if was == "approved":
        s.add(Approval(draft_id=draft.id, draft_version=new_version, user_id=user,
                       decision="withdrawn", via="image", reason=reason))
        audit.record(s, actor=user, action="draft.approval_withdrawn", subject_kind="draft",
                     subject_id=draft.id, details={"reason": reason})
    return new_version


def add_image(s: Session, draft_id: int, user: str, *, slack_file_id: str, filename: str,
              mime_type: str, data: bytes, alt_text: str | None) -> Decision:
    """Attach an image; like an edit, it makes a new version and withdraws an approval."""
    draft = s.get(Draft, draft_id, with_for_update=True)
    if draft is None:
        return Decision(False, "That draft no longer exists.")
    if not machine.can("edit", draft.state):
        return Decision(False, f"{draft.ref} is {draft.state}, so images can no longer be "
                        "added to it; nothing was attached.", draft_id)
    if s.scalar(select(DraftImage.id).where(DraftImage.draft_id == draft_id,
                                            DraftImage.slack_file_id == slack_file_id)):
        return Decision(False, f"That image is already attached to {draft.ref}.", draft_id)
    was = draft.state
    version = _new_version(s, draft, user, "image added after approval")
    if version is None:
        return Decision(False, f"{draft.ref} changed meanwhile; share the image again.", draft_id)
    digest = hashlib.sha256(data).hexdigest()
    image = DraftImage(draft_id=draft_id, slack_file_id=slack_file_id, filename=filename,
                       mime_type=mime_type, size=len(data), sha256=digest, data=data,
                       alt_text=alt_text, added_by=user, draft_version=version)
    s.add(image)
    s.flush()
    audit.record(s, actor=user, action="draft.image_added", subject_kind="draft",
                 subject_id=draft_id, details={
                     "image": image.id, "slack_file_id": slack_file_id, "filename": filename,
                     "mime_type": mime_type, "size": len(data), "sha256": digest,
                     "alt_text": alt_text, "version": version, "previous_state": was})
    return Decision(True, f"Image {filename} attached to {draft.ref} (version {version})"
                    + ("; its approval was withdrawn, so it needs approving again."
                       if was == "approved" else "."), draft_id)


def set_alt_text(s: Session, draft_id: int, user: str, image_id: int, alt_text: str) -> Decision:
    draft = s.get(Draft, draft_id, with_for_update=True)
    image = s.get(DraftImage, image_id)
    if draft is None or image is None or image.draft_id != draft_id:
        return Decision(False, "That image is no longer attached.")
    if not machine.can("edit", draft.state):
        return Decision(False, f"{draft.ref} is {draft.state}; its images can no longer be "
                        "changed.", draft_id)
    was = draft.state
    version = _new_version(s, draft, user, "alt text changed after approval")
    if version is None:
        return Decision(False, f"{draft.ref} changed meanwhile; try again.", draft_id)
    previous = image.alt_text
    image.alt_text = alt_text
    audit.record(s, actor=user, action="draft.image_alt_text_set", subject_kind="draft",
                 subject_id=draft_id, details={"image": image_id, "alt_text": alt_text,
                                               "previous_alt_text": previous,
                                               "version": version, "previous_state": was})
    return Decision(True, f"Alt text for {image.filename} on {draft.ref} saved (version "
                    f"{version})" + ("; its approval was withdrawn, so it needs approving again."
                                     if was == "approved" else "."), draft_id)


def images(s: Session, draft_id: int) -> list[DraftImage]:
    return list(s.scalars(select(DraftImage).where(DraftImage.draft_id == draft_id)
                          .order_by(DraftImage.id)))


def refuse(s: Session, draft: Draft, user: str, decision: str, via: str, reason: str) -> Decision:
    s.add(Approval(draft_id=draft.id, draft_version=draft.version, user_id=user,
                   decision="refused", via=via, reason=reason))
    audit.record(s, actor=user, action="draft.decision_refused", subject_kind="draft",
                 subject_id=draft.id, details={"attempted": decision, "via": via,
                                               "version": draft.version, "reason": reason})
    return Decision(False, reason, draft.id)


def writers(s: Session, draft_id: int) -> set[str]:
    """Everyone who wrote or edited any version of the draft (text, images, alt text):
    none of them may approve it (four eyes on the words that go out)."""
    draft = s.get_one(Draft, draft_id)
    return {draft.author, *s.scalars(select(DraftVersion.edited_by).where(
        DraftVersion.draft_id == draft_id))}


def _writer_refusal(draft: Draft, user: str, what: str) -> str:
    if user == draft.author:
        return (f"You wrote this draft, so someone else in the comms team must {what} it; "
                "nothing was published.")
    return (f"You edited {draft.ref}, so its words are partly yours: someone who neither wrote "
            f"nor edited it must {what} version {draft.version}; nothing was published.")


def _stale(draft: Draft, version: int | None) -> str | None:
    if version is None or version == draft.version:
        return None
    return (f"{draft.ref} was changed after the message you acted on (you saw version "
            f"{version}; it is now version {draft.version}): read it again, then decide. "
            "Nothing was published.")


def approve(s: Session, draft_id: int, user: str, *, policy: ApprovalPolicy,
            via: str, version: int | None = None) -> Decision:
    # lock the draft row: approvals of one draft are decided one at a time
    draft = s.get(Draft, draft_id, with_for_update=True)
    if draft is None:
        return Decision(False, "That draft no longer exists.")
    if not policy.may_approve:
        return refuse(s, draft, user, "approve", via, policy.refusal)
    authors = writers(s, draft_id)
    if user in authors:
        return refuse(s, draft, user, "approve", via, _writer_refusal(draft, user, "approve"))
    stale = _stale(draft, version)
    if stale:
        return refuse(s, draft, user, "approve", via, stale)
    if draft.state != "pending":
        return Decision(False, f"{draft.ref} is already {draft.state}.", draft_id)
    if policy.blockers:
        return refuse(s, draft, user, "approve", via,
                      "It cannot be approved: " + " ".join(policy.blockers))
    t = now()
    if draft.scheduled_for is not None and draft.scheduled_for <= t:
        if not _cas(s, draft_id, "expire", decided_by=user):
            return Decision(False, f"{draft.ref} was already decided.", draft_id)
        # the approval still counts towards *Publish now* (two-approval accounts)
        s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                       decision="approve", via=via))
        audit.record(s, actor=user, action="draft.expired", subject_kind="draft",
                     subject_id=draft_id, details={
                         "scheduled_for": draft.scheduled_for.isoformat(),
                         "approved_at": t.isoformat(), "version": draft.version})
        return Decision(False, f"{draft.ref} was scheduled for a time that has passed, so it "
                        "was not published (an approval after the scheduled time never "
                        "publishes silently). An approver can press *Publish now* on it, or "
                        "the author can draft it again with a new time.", draft_id)
    earlier = _approvers_of(s, draft) - authors
    if user in earlier:
        return Decision(False, f"You have already approved {draft.ref}; it needs another "
                        "approver.", draft_id)
    if policy.step is not None and policy.step != _steps_done(s, draft):
        return Decision(False, f"{draft.ref} moved on to another approval step meanwhile; "
                        "look at its card and try again.", draft_id)
    approvers = earlier | {user}
    s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                   decision="approve", via=via))
    special_ok = policy.special_group is None or bool(approvers & policy.special_group)
    if len(approvers) < policy.required or not special_ok:
        audit.record(s, actor=user, action="draft.approval_added", subject_kind="draft",
                     subject_id=draft_id, details={"version": draft.version, "via": via,
                                                   "approvals": len(approvers),
                                                   "required": policy.required})
        more = (f"one more approval from {policy.special_label}" if not special_ok
                else f"{policy.required - len(approvers)} more approval(s)")
        return Decision(True, f"Approval recorded for {draft.ref}; it needs {more} before "
                        "it is published.", draft_id)
    if not _cas(s, draft_id, "approve", approved_by=user, approved_at=t,
                decided_by=user):
        return Decision(False, f"{draft.ref} was already decided.", draft_id)
    audit.record(s, actor=user, action="draft.approved", subject_kind="draft",
                 subject_id=draft_id, details={"version": draft.version, "via": via,
                                               "approvers": sorted(approvers)})
    supersede_competitors(s, draft, user)
    return Decision(True, f"{draft.ref} approved.", draft_id,
                    publish_now=draft.scheduled_for is None)


def _steps_done(s: Session, draft: Draft) -> int:
    """Approval steps passed on the current version: approvals and skipped steps."""
    return len(list(s.scalars(select(Approval.id).where(
        Approval.draft_id == draft.id, Approval.draft_version == draft.version,
        Approval.decision.in_(("approve", "skipped"))))))


def _approvers_of(s: Session, draft: Draft) -> set[str]:
    """Who has approved the draft's current version."""
    return set(s.scalars(select(Approval.user_id).where(
        Approval.draft_id == draft.id, Approval.draft_version == draft.version,
        Approval.decision == "approve")))


def supersede_competitors(s: Session, draft: Draft, user: str) -> list[int]:
    if draft.mention_id is None:
        return []
    ids = list(s.scalars(select(Draft.id).where(
        Draft.mention_id == draft.mention_id, Draft.id != draft.id,
        Draft.state.in_(machine.sources("supersede")))))
    superseded = []
    for other in ids:
        if _cas(s, other, "supersede", decided_by=user):
            audit.record(s, actor=user, action="draft.superseded", subject_kind="draft",
                         subject_id=other, details={"by_draft": draft.id})
            superseded.append(other)
    return superseded


def reject(s: Session, draft_id: int, user: str, *, policy: ApprovalPolicy,
           via: str, version: int | None = None) -> Decision:
    # locked, as for approving: an edit cannot commit between the version check and the
    # rejection, which then names the version the approver saw
    draft = s.get(Draft, draft_id, with_for_update=True)
    if draft is None:
        return Decision(False, "That draft no longer exists.")
    if not policy.may_approve:
        return refuse(s, draft, user, "reject", via, policy.refusal)
    stale = _stale(draft, version)
    if stale:
        return refuse(s, draft, user, "reject", via, stale)
    if not _cas(s, draft_id, "reject", decided_by=user):
        return Decision(False, f"{draft.ref} is already {draft.state}.", draft_id)
    s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                   decision="reject", via=via))
    audit.record(s, actor=user, action="draft.rejected", subject_kind="draft",
                 subject_id=draft_id, details={"version": draft.version, "via": via})
    return Decision(True, f"{draft.ref} rejected.", draft_id)


def retry(s: Session, draft_id: int, user: str, *, policy: ApprovalPolicy) -> Decision:
    """An approver asks for a failed (or expired) draft to be published now."""
    draft = s.get(Draft, draft_id, with_for_update=True)
    if draft is None:
        return Decision(False, "That draft no longer exists.")
    if not policy.may_approve:
        return refuse(s, draft, user, "retry", "button", policy.refusal)
    if policy.blockers:
        return refuse(s, draft, user, "retry", "button",
                      "It cannot be published: " + " ".join(policy.blockers))
    if draft.state == "expired":
        # an expired draft was never approved: publishing it now is an approval, with the
        # same four eyes (the approvals given too late count towards it)
        authors = writers(s, draft_id)
        if user in authors:
            return refuse(s, draft, user, "retry", "button",
                          _writer_refusal(draft, user, "approve publishing"))
        approvers = (_approvers_of(s, draft) - authors) | {user}
        special_ok = policy.special_group is None or bool(approvers & policy.special_group)
        if len(approvers) < policy.required or not special_ok:
            if user not in _approvers_of(s, draft):
                s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                               decision="approve", via="retry"))
                audit.record(s, actor=user, action="draft.approval_added", subject_kind="draft",
                             subject_id=draft_id, details={
                                 "version": draft.version, "via": "retry",
                                 "approvals": len(approvers), "required": policy.required})
            return Decision(False, f"{draft.ref} needs {policy.required} distinct approvers "
                            "who neither wrote nor edited it before it is published; your "
                            "approval is recorded.", draft_id)
    if not _cas(s, draft_id, "retry", approved_by=user,
                approved_at=now(), scheduled_for=None, last_error=None, decided_by=user):
        return Decision(False, f"{draft.ref} is {draft.state}; nothing to retry.", draft_id)
    s.add(Approval(draft_id=draft_id, draft_version=draft.version, user_id=user,
                   decision="approve", via="retry"))
    audit.record(s, actor=user, action="draft.retry_requested", subject_kind="draft",
                 subject_id=draft_id, details={"previous_state": draft.state,
                                               "version": draft.version})
    if draft.mention_id is not None:
        supersede_competitors(s, draft, user)
    return Decision(True, f"Publishing {draft.ref} again.", draft_id, publish_now=True)


# ---------------------------------------------------------------- publishing steps
# The publishing claim (approved -> publishing -> published | failed, fenced by a token,
# renewed, released with a retry time) is services/publication.py.
