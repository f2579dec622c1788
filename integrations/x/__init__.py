"""X (Twitter). Its credentials keep their own typed loader (`config._x_credentials`)."""

from commsdesk.integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="X", parts=("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"),
    optional=("BEARER_TOKEN",),
    purpose="X user-context credentials, needed to read mentions and to post",
)
