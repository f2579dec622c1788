"""Pinterest (API v5): pins with image, alt text, link and board; follower count.

Checked against `../shared/specs/pinterest/v5/openapi.json` (Pinterest API v5 OpenAPI
3.0.3, 5.23.0) by tests/spec_check.py in tests/integrations/test_network_contract.py: requests and
answers of `GET /user_account` (UserAccount), `POST /pins` (PinCreate: board_id, title,
description, link, alt_text, media_source PinMediaSourceImageBase64 with ContentType
image/jpeg | image/png) and `GET /boards/{board_id}/pins` (paged Pin list). GIF and WebP
are converted to PNG/JPEG when shared (services/images.py); the emulator refuses other
content types and bytes that are not the type named."""

from integrations.base import AccountField, CredentialSpec, EnvSetting, NetworkSpec

SPEC = NetworkSpec(
    name="pinterest",
    label="Pinterest",
    example_handle="nottscc",
    credentials=CredentialSpec(
        prefix="PINTEREST", parts=("ACCESS_TOKEN",),
        purpose="an OAuth access token (scopes boards:read boards:write pins:read pins:write "
                "user_accounts:read, as the v5 spec's operations name them), "
                "needed to create pins",
    ),
    build="integrations.pinterest.network:build",
    account_fields=(AccountField("board_id", "the board new pins go to", example="1000002"),),
    settings=(EnvSetting("pinterest_api_base_url", "https://api.pinterest.com"),),
    base_url_setting="pinterest_api_base_url",
    link_hosts=("pinterest.com", "pinterest.co.uk", "pin.it"),
    emulator="integrations.pinterest.emulator:PinterestEmulator",
    demo="integrations.pinterest.demo:Seed",
)
