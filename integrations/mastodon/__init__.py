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

from integrations.base import AccountField, CredentialSpec, NetworkSpec, PostUrl

SPEC = NetworkSpec(
    name="mastodon",
    label="Mastodon",
    credentials=CredentialSpec(
        prefix="MASTODON", parts=("ACCESS_TOKEN",),
        purpose="the account's access token (scopes read write), needed to read mentions "
                "and to post",
    ),
    build="integrations.mastodon.network:build",
    account_fields=(AccountField("base_url", "the instance, e.g. https://mastodon.social",
                                 url=True, example="https://mastodon.social"),),
    length_rule=" (links count 23)",
    post_urls=(PostUrl(r"^https://[A-Za-z0-9.-]{1,253}/@[A-Za-z0-9_]{1,64}"
                       r"(?:@[A-Za-z0-9.-]{1,253})?/\d{1,25}$"),),
    links_on_account_host=True,  # only the account's own instance
    search="integrations.mastodon.search",
    private_replies_stay_private=True,  # a direct mention is answered as direct
    log_libraries=("mastodon",),
    emulator="integrations.mastodon.emulator:MastodonEmulator",
    demo="integrations.mastodon.demo:Seed",
)
