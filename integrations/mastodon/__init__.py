"""Mastodon (Mastodon.py): mention notifications in, replies and posts out."""

from commsdesk.integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="MASTODON", parts=("ACCESS_TOKEN",),
    purpose="the account's access token (scopes read write), needed to read mentions and to post",
)
