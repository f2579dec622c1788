"""X (Twitter): mentions in, replies and posts (with images) out, over tweepy's API v2
Client (`network.py`); recent search for listening (`search.py`).

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

from integrations.base import CredentialSpec, EnvSetting, NetworkSpec, PostUrl

SPEC = NetworkSpec(
    name="x",
    label="X",
    credentials=CredentialSpec(
        prefix="X",
        parts=("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"),
        optional=("BEARER_TOKEN",),
        purpose="user-context credentials, needed to read mentions and to post",
    ),
    build="integrations.x.network:build",
    settings=(EnvSetting("x_api_base_url", "https://api.twitter.com"),),
    base_url_setting="x_api_base_url",
    numeric_user_id=True,
    length_rule=" (links count 23, emoji and some scripts 2)",
    post_urls=(PostUrl(
        r"^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/(?P<user>[A-Za-z0-9_]{1,15})"
        r"/status(?:es)?/(?P<id>\d{1,25})(?:[/?#].*)?$",
        example="https://x.com/<user>/status/<id>"),),
    link_hosts=("x.com", "twitter.com"),
    search="integrations.x.search",
    log_libraries=("tweepy",),
    emulator="integrations.x.emulator:XEmulator",
    demo_stage="integrations.x.demo:Stage",
)
