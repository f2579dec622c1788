"""Facebook Pages (Graph API over httpx): feed comments and Messenger messages arrive by
webhook (`/webhooks/facebook`, signed with the app secret), and comments on the last
fortnight's posts are also polled as a backstop for lost deliveries; replies to comments,
replies to messages inside the 24-hour messaging window, and page posts go out.

Checked against `../shared/specs/facebook/NOTES.md` (no openly licensed spec) by
tests/spec_check.py `check_facebook` in tests/integrations/test_network_contract.py: §4 "Graph API
calls for reading and replying to comments" (versioned paths, the page access token on
every call, `{"data": [...], "paging"}` edges with `since`, followed by the
`paging.next` Graph returns, time-based or by cursors, `{"error": {message, type, code}}`
errors); §1-§2 webhook verification and X-Hub-Signature-256 are tested in
tests/integrations/facebook/test_facebook.py."""

from integrations.base import AccountField, CredentialSpec, EnvSetting, NetworkSpec

SPEC = NetworkSpec(
    name="facebook",
    label="Facebook",
    example_handle="nottinghamshirecc",
    credentials=CredentialSpec(
        prefix="FACEBOOK", parts=("PAGE_ACCESS_TOKEN",), shared=("FACEBOOK_APP_SECRET",),
        purpose="a page access token (pages_manage_engagement, pages_manage_posts, "
                "pages_messaging, pages_read_engagement, pages_read_user_content), needed to "
                "reply, to post and to poll comments",
    ),
    build="integrations.facebook.network:build",
    account_fields=(AccountField("page_id", "the page's id", example="1000001"),),
    settings=(EnvSetting("facebook_graph_base_url", "https://graph.facebook.com"),
              EnvSetting("facebook_graph_version", "v21.0"),
              EnvSetting("facebook_app_secret", secret=True),
              EnvSetting("facebook_verify_token", secret=True)),
    base_url_setting="facebook_graph_base_url",
    link_hosts=("facebook.com", "fb.com", "messenger.com"),
    routes="integrations.facebook.webhook:routes",  # GET/POST /webhooks/facebook
    # Meta batches at most 1,000 updates into one delivery and documents no byte limit;
    # our page's deliveries are a few KB, and one refused is still found by the poll
    body_limits=(("/webhooks/facebook", 1 << 20),),
    reply_window="integrations.facebook.window:closes",
    reply_window_name="Messenger",
    emulator="integrations.facebook.emulator:FacebookEmulator",
    demo="integrations.facebook.demo:Seed",
)
