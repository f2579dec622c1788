"""X (Twitter). Its credentials keep their own typed loader (`config._x_credentials`).

Checked against `../shared/specs/x/openapi.json` (X API v2 OpenAPI 3.0, v2.167) by
tests/spec_check.py in tests/integrations/test_network_contract.py: every request `network.py` sends
and every answer `emulator.py` gives is validated against the operation its method and
path name: `GET /2/users/me`, `GET /2/users/{id}` (public_metrics),
`GET /2/users/{id}/mentions`, `GET /2/users/{id}/tweets`, `POST /2/tweets` (TweetCreateRequest:
reply.in_reply_to_tweet_id, media.media_ids), `POST /2/media/upload` (one-request image),
`POST /2/media/upload/initialize`, `/{id}/append`, `/{id}/finalize` and
`GET /2/media/upload?command=STATUS` (GIFs, media_category tweet_gif),
`POST /2/media/metadata` (alt text). Tolerated deviations of the file (SOURCE.md): the
spec's "post" renames of tweet names (`post.fields`, `referenced_posts`, `post_count`) are
read as aliases, `*.fields` names may be any property of the Post/User schema, errors may
be RFC 7807 problems (as X's recorded traffic shows). The emulator also checks OAuth 1.0a
signatures (HMAC-SHA1) and X's media rules (types, sizes, GIF only chunked)."""

from integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="X", parts=("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"),
    optional=("BEARER_TOKEN",),
    purpose="X user-context credentials, needed to read mentions and to post",
)
