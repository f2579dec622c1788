"""The demo council: people, channels, the accounts on the page's network, services and
resident mentions.

Shaped like the county council of the brief (../shared/seed): a main account,
libraries, country parks and jobs; five services; a comms team who approve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.demo.stage import Account, Resident, SeedMention
from integrations import registry

SIGNING_SECRET = "demo-signing-secret-not-a-real-one"
BOT_TOKEN = "xoxb-demo-bot-token"
APPROVALS = "C0APPROVALS"
DEFAULT = "C0COMMS"
APPROVERS = "S0COMMS"
YOUTH_LEADS = "S0YOUTHLEADS"  # the first of @NottsYouth's two approval steps
COUNCIL_DOMAIN = "nottinghamshire.gov.uk"  # links to it get UTM parameters
POLL_SECONDS = 10
# the network on the page's public pane (its emulator is the runner's, its state saved):
# the integration that offers a demo stage; the others come from their integrations' demo
# seeds (bot/demo/networks.py)
STAGE = registry.stage().name


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    real_name: str
    role: str
    home_channel: str


PEOPLE: tuple[Person, ...] = (
    Person("U0PRIYA", "priya", "Priya Sharma", "Comms officer (approver)", APPROVALS),
    Person("U0TOM", "tom", "Tom Walker", "Comms officer (approver)", APPROVALS),
    Person("U0HARRY", "harry", "Harry Clarke", "Highways officer", "C0HIGHWAYS"),
    Person("U0WENDY", "wendy", "Wendy Bell", "Waste officer", "C0WASTE"),
    Person("U0YASMIN", "yasmin", "Yasmin Ali", "Youth worker", "C0YOUTH"),
    Person("U0DAN", "dan", "Dan Hughes", "Youth service lead (approves @NottsYouth first)",
           "C0YOUTH"),
)
COMMS_TEAM = ("U0PRIYA", "U0TOM")

# (id, name, purpose) in the order the sidebar shows them
CHANNELS: tuple[tuple[str, str, str], ...] = (
    (APPROVALS, "comms-approvals", "Drafts wait here for a comms officer's ✅"),
    (DEFAULT, "comms", "Mentions no service claims"),
    ("C0WASTE", "waste-recycling", "Waste & Recycling"),
    ("C0HIGHWAYS", "highways", "Highways"),
    ("C0LIBRARIES", "libraries", "Libraries"),
    ("C0ADULTCARE", "adult-social-care", "Adult Social Care"),
    ("C0YOUTH", "young-peoples-centres", "Young People's Centres"),
)


ACCOUNTS: tuple[Account, ...] = (
    Account("nottscc", "NottsCC", "1111", "Nottinghamshire County Council", "NOTTSCC"),
    Account("libraries", "NottsLibraries", "2222", "Notts Libraries", "LIBRARIES"),
    Account("countryparks", "NottsParks", "3333", "Notts Country Parks", "PARKS"),
    Account("jobs", "NottsCCJobs", "4444", "Notts County Council Jobs", "JOBS"),
    Account("youth", "NottsYouth", "5555", "Notts Young People's Centres", "YOUTH"),
)
# multi-step approval (issue 21): the youth service lead, then a comms officer
APPROVAL_STEPS = {"youth": [YOUTH_LEADS, APPROVERS]}

SERVICES: tuple[dict[str, Any], ...] = (
    {"name": "waste", "channel": "C0WASTE",
     "keywords": ["bin", "bins", "recycling", "tip", "fly-tipping", "collection"]},
    {"name": "highways", "channel": "C0HIGHWAYS",
     "keywords": ["pothole", "potholes", "gritting", "gritter", "roadworks", "street light"],
     # triage: these make a mention urgent (a shorter target, its own reminder)
     "urgent_keywords": ["flood", "flooding", "fallen tree", "gas leak", "gets hurt"]},
    {"name": "libraries", "channel": "C0LIBRARIES", "keywords": ["library", "libraries"],
     "accounts": ["libraries"]},
    {"name": "adult-care", "channel": "C0ADULTCARE",
     "keywords": ["social care", "care home", "carer", "care assessment", "blue badge"]},
    {"name": "youth-centres", "channel": "C0YOUTH",
     "keywords": ["youth club", "youth centre", "young people's centre"]},
)


def config_dict() -> dict[str, Any]:
    """The demo's commsdesk.toml, as data (written to the data folder for reference)."""
    return {
        "timezone": "Europe/London",
        "poll_interval_seconds": POLL_SECONDS,
        "slack": {"approvals_channel": APPROVALS, "default_channel": DEFAULT,
                  "approvers_usergroup": APPROVERS},
        "accounts": [{"name": a.name, "network": STAGE, "handle": a.handle, "user_id": a.user_id,
                      "credentials": a.credentials}
                     | ({"approval_steps": APPROVAL_STEPS[a.name]}
                        if a.name in APPROVAL_STEPS else {}) for a in ACCOUNTS],
        "services": [dict(s) for s in SERVICES],
        # keyword listening: posts that name the roadworks without an @ are "heard"
        "listening": [{"service": "highways", "terms": ["A60 roadworks", "#NottsRoads"],
                       "accounts": ["nottscc"], "interval_seconds": 30, "budget": 30}],
        "links": {"tracked_domains": [COUNCIL_DOMAIN]},
    }


# Residents (user id, handle, display name) and what they post at the start.
RESIDENTS: tuple[Resident, ...] = (
    Resident("90001", "beeston_dave", "Dave from Beeston"),
    Resident("90002", "mansfield_mum", "Sarah K"),
    Resident("90003", "bridgford_reads", "Alex Reads"),
    Resident("90004", "carer_linda", "Linda M"),
    Resident("90005", "rufford_walker", "Jo Walker"),
    Resident("90006", "worksop_dad", "Mark T"),
)

# (resident handle, text, minutes ago)
SEED_MENTIONS: tuple[SeedMention, ...] = tuple(SeedMention(*m) for m in (
    ("mansfield_mum",
     "@NottsCC huge pothole on the A60 Mansfield Road by the Daybrook roundabout, nearly lost "
     "a wheel this morning. Can it be filled before someone gets hurt?", 42),
    ("beeston_dave",
     "@NottsCC our green bin wasn't collected on Tuesday again (Beeston, NG9). Third time "
     "this month - who do I speak to?", 35),
    ("bridgford_reads",
     "@NottsLibraries is West Bridgford open on the bank holiday Monday? Want to bring the "
     "kids to sign up for the Summer Reading Challenge", 27),
    ("carer_linda",
     "@NottsCC my mum's care assessment has been waiting six weeks & nobody rings back. "
     "Who can I contact about social care at home?", 19),
    ("rufford_walker",
     "Thanks @NottsParks rangers at Rufford Abbey <3 brilliant day out & the kids "
     "loved the new play area", 12),
    ("worksop_dad",
     "@NottsCC is the youth club at the Worksop young people's centre still on Thursday "
     "evenings over the summer?", 6),
    # no @: found by keyword listening and alerted in Highways as "heard"
    ("beeston_dave",
     "Forty minutes through the A60 roadworks at Daybrook again this morning #NottsRoads", 3),
))


# Planning (issue 21), seeded once into a new demo's database: one campaign to the main
# account and to each other network's account whose seed is `in_campaign` (one card, a
# variant each, the council link tagged per network) ...
CAMPAIGN_AUTHOR = "U0TOM"
CAMPAIGN_TEXT = ("campaign:Summer-Reading-Challenge The Summer Reading Challenge starts "
                 "Saturday at every Notts library: free for 4 to 11 year olds. Sign up: "
                 f"https://www.{COUNCIL_DOMAIN}/libraries/summer")


def campaign_command(other_accounts: list[str]) -> str:
    """The `/social` text of the seeded campaign."""
    return f"post {','.join([ACCOUNTS[0].name, *other_accounts])} {CAMPAIGN_TEXT}"
# ... and a CSV batch by the youth worker over the next days (day 0: in two hours; later
# days: at 10:00): one card to approve row by row or all at once, each @NottsYouth draft
# at step 1 of 2
BATCH_FILE = "youth-summer-programme.csv"
BATCH_AUTHOR = "U0YASMIN"
BATCH_ROWS: tuple[tuple[str, int, str, str], ...] = (  # accounts, day, text, campaign
    ("youth", 0, "Summer youth club nights start this week at Worksop Young People's Centre, "
                 "Thursdays 6-9pm. Free, just turn up!", "Youth summer"),
    ("youth", 1, "Mansfield Young People's Centre is open for drop-in sessions all summer: "
                 f"https://www.{COUNCIL_DOMAIN}/youth/centres", "Youth summer"),
    ("youth,nottscc", 2, "Free summer activities for 11-19 year olds across Nottinghamshire: "
                         f"https://www.{COUNCIL_DOMAIN}/youth/summer", "Youth summer"),
)
