"""Bluesky (AT Protocol XRPC over httpx): mention/reply/quote notifications in, posts and
threaded replies (root + parent refs, rich-text facets) out.

Checked against the lexicons in `../shared/specs/bluesky/lexicons` by tests/spec_check.py
`check_bluesky` (a small lexicon validator) in tests/integrations/test_network_contract.py: each call's
parameters, input and output against its lexicon: com.atproto.server.createSession and
refreshSession, com.atproto.identity.resolveHandle, app.bsky.notification.listNotifications
(polled with its `cursor`; the stored cursor is the notifications' indexedAt, record keys
being the client's), app.bsky.feed.getPosts, com.atproto.repo.uploadBlob and
com.atproto.repo.createRecord, whose record is checked against app.bsky.feed.post
(text 300 graphemes, facets as app.bsky.richtext.facet, reply strongRefs,
app.bsky.embed.images with alt and blob refs). A method without a lexicon in the folder
(app.bsky.actor.getProfile, com.atproto.repo.listRecords/getRecord) is reported as a
problem if called; the contract's flows do not call them, so they are not yet judged."""

from integrations.base import CredentialSpec, EnvSetting, NetworkSpec, PostUrl

SPEC = NetworkSpec(
    name="bluesky",
    label="Bluesky",
    example_handle="nottscc.bsky.social",
    credentials=CredentialSpec(
        prefix="BLUESKY", parts=("APP_PASSWORD",),
        purpose="an app password (Settings > Privacy and security > App passwords), "
                "needed to read notifications and to post",
    ),
    build="integrations.bluesky.network:build",
    settings=(EnvSetting("bluesky_api_base_url", "https://bsky.social"),),
    base_url_setting="bluesky_api_base_url",
    length_rule=" (in graphemes: an emoji counts 1)",
    post_urls=(PostUrl(r"^https://(?:www\.)?bsky\.app/profile/[A-Za-z0-9._:-]{1,253}/post/"
                       r"[A-Za-z0-9._~:-]{1,64}$"),),
    link_hosts=("bsky.app",),
    search="integrations.bluesky.search",
    emulator="integrations.bluesky.emulator:BlueskyEmulator",
    demo="integrations.bluesky.demo:Seed",
)
