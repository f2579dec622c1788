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

from integrations.base import CredentialSpec

CREDENTIALS = CredentialSpec(
    prefix="FACEBOOK", parts=("PAGE_ACCESS_TOKEN",), shared=("FACEBOOK_APP_SECRET",),
    purpose="a page access token (pages_manage_engagement, pages_manage_posts, "
            "pages_messaging, pages_read_engagement, pages_read_user_content), needed to "
            "reply, to post and to poll comments",
)
