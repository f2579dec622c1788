"""Bluesky (AT Protocol XRPC over httpx): mention/reply/quote notifications in, posts and
threaded replies (root + parent refs, rich-text facets) out."""

from commsdesk.integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="BLUESKY", parts=("APP_PASSWORD",),
    purpose="an app password (Settings > Privacy and security > App passwords), "
            "needed to read notifications and to post",
)
