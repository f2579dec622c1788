"""Pinterest (API v5): pins with image, alt text, link and board; follower count."""

from commsdesk.integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="PINTEREST", parts=("ACCESS_TOKEN",),
    purpose="an OAuth access token (scopes pins:write boards:read user_accounts:read), "
            "needed to create pins",
)
