"""Images on drafts: shared in the thread of a draft's approval message, fetched from
Slack with the bot token, kept with the draft and published with it.

Alt text comes from the file's own alt text (Slack's *Add description*, `alt_txt`),
else from the message (`alt: a gritter on the A60`), else from a title the person gave
the file; without any, the image is attached but the draft cannot be approved until
someone replies in the thread with `alt: ...`. Adding an image (or changing its alt
text) is an edit: a new version, and an approval already given is withdrawn.
"""

from __future__ import annotations

import html
import io
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import logs
from bot.blockkit.escape import escape, truncate
from bot.blockkit.labels import account_label
from bot.db import transaction
from bot.domain import draft_machine as machine
from bot.models import Account, Draft
from bot.runtime import Runtime
from bot.services import audit, draft_states
from bot.services.approvers import UNCONFIRMED, Unconfirmed
from bot.services.draft_surfaces import refresh_draft
from bot.services.groups import campaign_drafts
from bot.services.outbox import enqueue
from integrations.base import Capability, Network

log = logs.get("commsdesk.images")

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # X's and Mastodon's common limit; Bluesky's is ~1 MB
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF",
               "image/webp": "WebP"}
SLACK_FILE_HOSTS = ("files.slack.com", "slack-files.com")
_ALT = re.compile(r"^\s*alt(?:[ -]?text)?\s*:\s*(?P<alt>\S.*)$", re.IGNORECASE | re.DOTALL)


class ImageRefused(Exception):
    """The image cannot be attached; `reason` is said to the person."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    file_id: str
    filename: str
    mime_type: str
    data: bytes
    alt_text: str | None


def alt_from_text(text: str) -> str | None:
    """`alt: ...` in a message (Slack escapes &, < and > in message text)."""
    m = _ALT.match(html.unescape(text or ""))
    return m.group("alt").strip() if m else None


def _alt_from_title(title: str | None, filename: str) -> str | None:
    """A title the person typed (Slack's default title is the file name)."""
    t = (title or "").strip()
    stem = filename.rsplit(".", 1)[0]
    if not t or t in (filename, stem) or re.fullmatch(r"[\w.-]+\.\w{2,4}", t):
        return None
    return t


def thread_of(rt: Runtime, event: dict[str, Any]) -> tuple[str, str, str] | None:
    """(channel, thread ts, user) when this message is a person's reply in a thread of
    the approvals channel (only those can carry images or alt text for a draft)."""
    channel, thread_ts, user = event.get("channel"), event.get("thread_ts"), event.get("user")
    if channel != rt.settings.config.slack.approvals_channel or not thread_ts or not user:
        return None
    if thread_ts == event.get("ts") or event.get("bot_id"):
        return None
    if event.get("subtype") not in (None, "file_share"):
        return None
    if not event.get("files") and alt_from_text(event.get("text") or "") is None:
        return None
    return str(channel), str(thread_ts), str(user)


def _draft_for(rt: Runtime, channel: str, thread_ts: str) -> int | None:
    for attempt in range(10):  # the approval message's ts is stored a moment after Slack has it
        with rt.sessions() as s:
            draft_id = s.scalar(select(Draft.id).where(Draft.approval_channel == channel,
                                                       Draft.approval_ts == thread_ts))
        if draft_id is not None or attempt == 9:
            return draft_id
        time.sleep(0.3)
    return None


def on_thread_message(rt: Runtime, event: dict[str, Any]) -> None:
    where = thread_of(rt, event)
    if where is None:
        return
    channel, thread_ts, user = where
    draft_id = _draft_for(rt, channel, thread_ts)
    # no draft of its own: a campaign's card (issue 21)
    draft_ids = campaign_drafts(rt, channel, thread_ts) if draft_id is None else [draft_id]
    files = [f for f in event.get("files") or [] if isinstance(f, dict) and f.get("id")]
    text_alt = alt_from_text(event.get("text") or "")
    for draft_id in draft_ids:  # each variant checked for its own network
        if files:
            for n, f in enumerate(files):
                _attach(rt, draft_id, user, channel, thread_ts, f, text_alt if n == 0 else None)
        elif text_alt is not None:
            _set_alt(rt, draft_id, user, channel, thread_ts, text_alt)
    rt.kick_outbox()


def _tell(s: Session, channel: str, thread_ts: str, user: str, draft_id: int, text: str) -> None:
    """`text` may name a file or echo Slack's error: escaped (no ping, no link)."""
    enqueue(s, channel, "ephemeral", draft_id=draft_id,
            payload={"user": user, "text": escape(truncate(text, 2000)), "thread_ts": thread_ts})


def _refuse(rt: Runtime, draft_id: int, user: str, channel: str, thread_ts: str,
            file_id: str | None, reason: str) -> None:
    with transaction(rt.sessions) as s:
        audit.record(s, actor=user, action="draft.image_refused", subject_kind="draft",
                     subject_id=draft_id, details={"slack_file_id": file_id, "reason": reason})
        _tell(s, channel, thread_ts, user, draft_id, f":no_entry: {reason}")


def _approver_now(rt: Runtime, user: str) -> bool:
    """Asked of Slack now: an image changes the words that go out."""
    try:
        return bool(rt.approvers.is_approver_live(user))
    except Unconfirmed as exc:
        raise ImageRefused(f"{UNCONFIRMED} Nothing was changed.") from exc


def _check(rt: Runtime, draft_id: int, user: str) -> Any:
    """May this person add images to this draft, and can its network take them? The
    draft's network."""
    with rt.sessions() as s:
        draft = s.get_one(Draft, draft_id)
        account = s.get_one(Account, draft.account_id)
        ref, author, state, name, handle = (draft.ref, draft.author, draft.state, account.name,
                                            account.handle)
        is_reply = draft.mention_id is not None
    if user != author and not _approver_now(rt, user):
        raise ImageRefused(f"Only the author of {ref} or a comms approver can add images to it; "
                           "the image was not attached.")
    if not machine.can("edit", state):
        raise ImageRefused(f"{ref} is {state}, so images can no longer be added to it; the "
                           "image was not attached.")
    network = rt.network(name)
    if Capability.MEDIA not in network.capabilities:
        raise ImageRefused(f"{ref} is for {account_label(handle, network.network)}, where commsdesk "
                           "cannot publish images; the image was not attached. Draft the post "
                           "for an account whose network takes images.")
    if is_reply and Capability.REPLY_MEDIA not in network.capabilities:
        raise ImageRefused(f"{ref} is a reply on {network.network}, where a reply cannot carry "
                           "images; the image was not attached. Post the image as a new post "
                           "instead.")
    return network


def sniff(data: bytes) -> str | None:
    """The image type the bytes are (JPEG, PNG, GIF, WebP), whatever the file was called."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def fit_for(network: Network, got: Fetched) -> tuple[Fetched, str | None]:
    """The image as the draft's network takes it: a network that names its `image_types`
    (e.g. JPEG and PNG only) gets a GIF or WebP converted with Pillow, to PNG when
    it has transparency or is a GIF, else JPEG; an animated one, or one that cannot be
    read, is refused now (not at publish time). Returns the image and a note for the
    person when it was converted."""
    sniffed = sniff(got.data)
    if sniffed is not None and sniffed != got.mime_type:  # the bytes, not Slack's label
        got = Fetched(got.file_id, got.filename, sniffed, got.data, got.alt_text)
    accepted = network.image_types
    if not accepted or got.mime_type in accepted:
        return got, None
    # lazy import: Pillow is heavy and only needed to convert
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    label = str(network.network).title()
    takes = " and ".join(IMAGE_TYPES[t] for t in IMAGE_TYPES if t in accepted)
    kind = IMAGE_TYPES.get(got.mime_type, got.mime_type)
    try:
        with PILImage.open(io.BytesIO(got.data)) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise ImageRefused(f"{got.filename} is an animated {kind}; {label} takes only "
                                   f"still {takes} images, so it was not attached. Share a "
                                   "still image instead.")
            im.load()
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            if "image/png" in accepted and (alpha or got.mime_type == "image/gif"):
                out, fmt, mime, ext = im.convert("RGBA" if alpha else "RGB"), "PNG", "image/png", "png"
            elif "image/jpeg" in accepted:
                out, fmt, mime, ext = im.convert("RGB"), "JPEG", "image/jpeg", "jpg"
            else:
                raise ImageRefused(f"{label} does not take {kind} images; it was not attached.")
            buf = io.BytesIO()
            out.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {"optimize": True}))
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            PILImage.DecompressionBombError) as exc:
        raise ImageRefused(f"{got.filename} could not be read as a {kind} image to convert it "
                           f"for {label} (which takes only {takes}); it was not attached.") from exc
    data = buf.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"{got.filename} converted to {fmt} for {label} is larger than "
                           f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB; it was not attached.")
    stem = got.filename.rsplit(".", 1)[0] if "." in got.filename else got.filename
    converted = Fetched(got.file_id, f"{stem}.{ext}"[:255], mime, data, got.alt_text)
    return converted, f"{label} takes only {takes} images, so it was converted from {kind} to {fmt}."


def _allowed_url(rt: Runtime, url: str) -> bool:
    """The bot token is only ever sent to Slack's own file host (or the emulator's)."""
    parts = urlsplit(url)
    api = urlsplit(rt.settings.env.slack_api_url or "https://slack.com/api/")
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in SLACK_FILE_HOSTS:
        return True
    return bool(host) and (host, parts.port) == ((api.hostname or "").lower(), api.port)


def fetch(rt: Runtime, file_ref: dict[str, Any], text_alt: str | None) -> Fetched:
    file_id = str(file_ref["id"])
    try:
        info: dict[str, Any] = rt.slack.files_info(file=file_id).get("file") or {}
    except Exception as exc:
        raise ImageRefused(f"I could not read that file from Slack ({exc}); share it "
                           "again.") from exc
    mime = str(info.get("mimetype") or "").lower()
    filename = str(info.get("name") or f"{file_id}.img")[:255]
    if mime not in IMAGE_TYPES:
        raise ImageRefused(f"{filename} is not an image commsdesk can publish (JPEG, PNG, GIF or "
                           "WebP); it was not attached.")
    if int(info.get("size") or 0) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"{filename} is {int(info['size']) // 1024} KB; images can be at most "
                           f"{MAX_IMAGE_BYTES // (1024 * 1024)} MB. It was not attached.")
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    if not _allowed_url(rt, url):
        raise ImageRefused(f"{filename} is not stored by Slack (it is an external file); "
                           "upload the image itself.")
    token = rt.settings.env.slack_bot_token or ""
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30,
                      follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ImageRefused(f"I could not download {filename} from Slack ({exc}); share it "
                           "again.") from exc
    ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
    if r.status_code != 200 or ctype == "text/html":
        raise ImageRefused(f"Slack would not give me {filename} (HTTP {r.status_code}"
                           f"{', a sign-in page: is the files:read scope granted?' if ctype == 'text/html' else ''}"
                           "); it was not attached.")
    if len(r.content) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"{filename} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB; "
                           "it was not attached.")
    alt = (str(info.get("alt_txt") or "").strip() or text_alt
           or _alt_from_title(info.get("title"), filename))
    return Fetched(file_id, filename, mime, r.content, alt)


def _attach(rt: Runtime, draft_id: int, user: str, channel: str, thread_ts: str,
            file_ref: dict[str, Any], text_alt: str | None) -> None:
    try:
        network = _check(rt, draft_id, user)
        got, converted = fit_for(network, fetch(rt, file_ref, text_alt))
    except ImageRefused as refused:
        _refuse(rt, draft_id, user, channel, thread_ts, str(file_ref.get("id")), refused.reason)
        return
    with transaction(rt.sessions) as s:
        decision = draft_states.add_image(s, draft_id, user, slack_file_id=got.file_id,
                                    filename=got.filename, mime_type=got.mime_type,
                                    data=got.data, alt_text=got.alt_text)
        if not decision.ok:
            _tell(s, channel, thread_ts, user, draft_id, decision.message)
            return
        draft = s.get_one(Draft, draft_id)
        refresh_draft(s, draft)
        note = f":frame_with_picture: {escape(decision.message)}"
        if converted:
            note += f" {escape(converted)}"
        if not got.alt_text:
            note += (f" It has no alt text, so {draft.ref} cannot be approved yet: reply in this "
                     "thread with `alt: &lt;what the image shows&gt;`.")
        enqueue(s, channel, "notice", draft_id=draft_id,
                payload={"in_draft_thread": True, "text": note})
    log.info("image attached", draft_id=draft_id, file=got.file_id, size=len(got.data))


def _set_alt(rt: Runtime, draft_id: int, user: str, channel: str, thread_ts: str,
             alt: str) -> None:
    with rt.sessions() as s:
        images = draft_states.images(s, draft_id)
    if not images:
        return  # an ordinary reply that happens to start with "alt:"
    target = next((i for i in images if not (i.alt_text or "").strip()), images[-1])
    try:
        with rt.sessions() as s:
            author = s.get_one(Draft, draft_id).author
        if user != author and not _approver_now(rt, user):
            raise ImageRefused("Only the draft's author or a comms approver can set its "
                               "images' alt text.")
    except ImageRefused as refused:
        _refuse(rt, draft_id, user, channel, thread_ts, target.slack_file_id, refused.reason)
        return
    with transaction(rt.sessions) as s:
        decision = draft_states.set_alt_text(s, draft_id, user, target.id, alt[:1000])
        if not decision.ok:
            _tell(s, channel, thread_ts, user, draft_id, decision.message)
            return
        refresh_draft(s, s.get_one(Draft, draft_id))
        enqueue(s, channel, "notice", draft_id=draft_id,
                payload={"in_draft_thread": True,
                         "text": f":frame_with_picture: {escape(decision.message)}"})
