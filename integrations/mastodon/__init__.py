"""Mastodon (Mastodon.py): mention notifications in, replies and posts out.

Checked against `../shared/specs/mastodon/NOTES.md` (no openly licensed machine-readable
spec) by tests/spec_check.py `check_mastodon` in tests/integrations/test_network_contract.py:
"Read notifications: GET /api/v1/notifications" (types, limit at most 80, paged by
notification id with max_id/since_id/min_id: the polling cursor is a notification id,
`n:<id>`), "Post a status or a reply: POST /api/v1/statuses" (Idempotency-Key,
in_reply_to_id, visibility), "Upload an image: POST /api/v2/media" (description, 202
while processing, GET /api/v1/media/:id), "Rate limits"; bearer token on every call,
string ids, `{"error": ...}` errors. The emulator gives notifications and statuses
separate ids and can deliver a late-federated status with an older id."""

from integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="MASTODON", parts=("ACCESS_TOKEN",),
    purpose="the account's access token (scopes read write), needed to read mentions and to post",
)
