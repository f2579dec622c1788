"""Flickr (REST API, OAuth 1.0a): comments on the council's recent photos in, replies as
comments on the photo, photos published with title, description and tags."""

from commsdesk.integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="FLICKR", parts=("API_KEY", "API_SECRET", "OAUTH_TOKEN", "OAUTH_TOKEN_SECRET"),
    purpose="the app's key and secret and the account's OAuth 1.0a token (write permission), "
            "needed to read comments and to post",
)
