"""Flickr (REST API, OAuth 1.0a): comments on the council's recent photos in, replies as
comments on the photo, photos published with title, description and tags.

Checked against `../shared/specs/flickr/NOTES.md` (no machine-readable spec) by
tests/spec_check.py `check_flickr` in tests/integrations/test_network_contract.py and by the emulator
itself: §1 endpoints (`/services/rest/`, `/services/upload/`, writes by POST), §2 OAuth
1.0a HMAC-SHA1 on every call, §3 the upload rule (every field but `photo` signed; error 96
otherwise), §4 response formats (`format=json&nojsoncallback=1`, `{stat, code, message}`,
`<rsp stat>` for uploads), §5 3,600 calls an hour per API key across its accounts
(`budget.py`, shown in /healthz), §6 the methods used (flickr.test.login,
flickr.people.getPhotos, flickr.photos.comments.getList / addComment)."""

from integrations.base import CredentialSpec, EnvSetting, NetworkSpec

SPEC = NetworkSpec(
    name="flickr",
    label="Flickr",
    example_handle="nottscc",
    credentials=CredentialSpec(
        prefix="FLICKR", parts=("API_KEY", "API_SECRET", "OAUTH_TOKEN", "OAUTH_TOKEN_SECRET"),
        purpose="the app's key and secret and the account's OAuth 1.0a token (write "
                "permission), needed to read comments and to post",
    ),
    build="integrations.flickr.network:build",
    settings=(EnvSetting("flickr_api_base_url", "https://api.flickr.com"),),
    base_url_setting="flickr_api_base_url",
    link_hosts=("flickr.com", "flic.kr"),
    health=("flickr_api_calls", "integrations.flickr.budget:runtime_usage"),  # per API key
    emulator="integrations.flickr.emulator:FlickrEmulator",
    demo="integrations.flickr.demo:Seed",
)
