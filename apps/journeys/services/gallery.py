"""The gallery of ready journeys: each starter is a graph in the JSON contract with the
templates (and, for win-back, the segment) it needs. Creating a journey from a starter makes
whichever of those the workspace lacks, as editable placeholders, then the draft."""

import copy
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.channels.choices import ChannelType
from apps.channels.models import Template
from apps.channels.services.templates import create_template
from apps.journeys.models import Journey
from apps.journeys.services import journeys as services
from apps.segments import services as segments
from apps.segments.models import Segment

BLANK = "blank"
HELLO = '{{ contact.first_name | default: "there" }}'
SHOP_LINK = "https://shop.example.com"


@dataclass(frozen=True)
class StarterSegment:
    slug: str
    name: str
    description: str
    rule: dict


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    summary: str  # one line on the gallery card: what the journey does
    graph: dict
    templates: dict[str, dict] = field(default_factory=dict)  # slug -> template data
    segments: tuple[StarterSegment, ...] = ()

    def channels(self) -> list[str]:
        """The channels its messages use, by name ("Email", "SMS")."""
        labels = dict(ChannelType.choices)
        kinds = sorted({data["channel"] for data in self.templates.values()})
        return [str(labels[kind]) for kind in kinds]

    def step_count(self) -> int:
        return len(self.graph["nodes"])


def _email(name: str, subject: str, heading: str, text: str, button: str, link: str) -> dict:
    """A short, plain placeholder email: a greeting, a paragraph, one button."""
    html = (
        '<html><body style="font-family: sans-serif; color: #222">'
        f'<p>Hi {HELLO},</p><h1 style="font-size: 20px">{heading}</h1><p>{text}</p>'
        f'<p><a href="{link}" style="background: #0172ad; color: #fff; padding: 10px 16px; '
        f'text-decoration: none; border-radius: 4px">{button}</a></p>'
        "<p>The {{ workspace.name }} team</p>"
        '<p style="font-size: 12px; color: #666">'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
        "</body></html>"
    )
    plain = (
        f"Hi {HELLO},\n\n{heading}\n\n{text}\n\n{button}: {link}\n\n"
        "The {{ workspace.name }} team\n\nUnsubscribe: {{ unsubscribe_url }}\n"
    )
    return {"name": name, "channel": "email", "subject": subject, "html": html, "text": plain}


def _sms(name: str, body: str) -> dict:
    return {"name": name, "channel": "sms", "body": body}


def _edge(source: str, target: str, branch: str | None = None) -> dict:
    edge = {"from": source, "to": target}
    if branch is not None:
        edge["branch"] = branch
    return edge


WELCOME = Starter(
    key="welcome",
    name=gettext_lazy("Welcome series"),
    summary=gettext_lazy(
        "Greets new sign-ups, shares tips two days later and sends an offer to those who "
        "have not bought within five more days."
    ),
    graph={
        "name": "Welcome series",
        "entry": {"type": "event", "event": "signed_up"},
        "reentry": "never",
        "exit_when": {"event": "unsubscribed"},
        "start": "welcome",
        "nodes": [
            {"id": "welcome", "type": "send", "channel": "email", "template": "welcome-1"},
            {"id": "wait_2_days", "type": "wait", "duration": "P2D"},
            {"id": "tips", "type": "send", "channel": "email", "template": "welcome-2"},
            {"id": "wait_purchase", "type": "wait", "until_event": "purchase", "timeout": "P5D"},
            {"id": "offer", "type": "send", "channel": "email", "template": "welcome-3"},
            {"id": "bought", "type": "goal", "event": "purchase"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("welcome", "wait_2_days"),
            _edge("wait_2_days", "tips"),
            _edge("tips", "wait_purchase"),
            _edge("wait_purchase", "bought", "event"),
            _edge("wait_purchase", "offer", "timeout"),
            _edge("offer", "done"),
        ],
    },
    templates={
        "welcome-1": _email(
            "Welcome 1: hello",
            "Welcome aboard, " + HELLO + "!",
            "Welcome aboard!",
            "Thanks for signing up. Here is what you can look forward to.",
            "Take a look",
            SHOP_LINK,
        ),
        "welcome-2": _email(
            "Welcome 2: tips",
            "Three tips to get the most out of us",
            "Getting started",
            "Here are three things our customers love most, picked for you.",
            "See the tips",
            SHOP_LINK + "/tips",
        ),
        "welcome-3": _email(
            "Welcome 3: first order offer",
            "A little something for your first order",
            "10% off your first order",
            "Use the code WELCOME10 at checkout this week.",
            "Shop now",
            SHOP_LINK,
        ),
    },
)

ABANDONED_CART = Starter(
    key="abandoned_cart",
    name=gettext_lazy("Abandoned cart"),
    summary=gettext_lazy(
        "Reminds shoppers of the cart they left after four hours, then by SMS (or email) a "
        "day later, until they buy."
    ),
    graph={
        "name": "Abandoned cart",
        # Keyed by the cart: each cart is followed on its own.
        "entry": {"type": "event", "event": "cart_updated", "key": "cart_id"},
        "reentry": "always",
        "start": "wait_purchase",
        "nodes": [
            {"id": "wait_purchase", "type": "wait", "until_event": "purchase", "timeout": "PT4H"},
            {"id": "reminder", "type": "send", "channel": "email", "template": "cart-reminder"},
            {"id": "wait_1_day", "type": "wait", "duration": "P1D"},
            {
                "id": "last_call",
                "type": "send",
                "channels": ["sms", "email"],
                "template": {"sms": "cart-reminder-sms", "email": "cart-last-chance"},
            },
            {"id": "bought", "type": "goal", "event": "purchase"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("wait_purchase", "bought", "event"),
            _edge("wait_purchase", "reminder", "timeout"),
            _edge("reminder", "wait_1_day"),
            _edge("wait_1_day", "last_call"),
            _edge("last_call", "done"),
        ],
    },
    templates={
        "cart-reminder": _email(
            "Cart reminder",
            "You left something in your cart",
            "Still thinking it over?",
            "Your cart is saved and waiting for you.",
            "Return to your cart",
            SHOP_LINK + "/cart",
        ),
        "cart-last-chance": _email(
            "Cart last chance",
            "Your cart is about to expire",
            "Last chance",
            "We can only hold your cart a little longer.",
            "Complete your order",
            SHOP_LINK + "/cart",
        ),
        "cart-reminder-sms": _sms(
            "Cart reminder (SMS)",
            f"Hi {HELLO}, your cart is still waiting for you: {SHOP_LINK}/cart",
        ),
    },
)

BROWSE_ABANDONMENT = Starter(
    key="browse_abandonment",
    name=gettext_lazy("Browse abandonment"),
    summary=gettext_lazy(
        "Follows up a day after someone viewed a product without buying or adding it to a cart."
    ),
    graph={
        "name": "Browse abandonment",
        "entry": {"type": "event", "event": "product_viewed"},
        "reentry": {"after_days": 7},
        # A cart started: the abandoned-cart journey takes over.
        "exit_when": {"event": "cart_updated"},
        "start": "wait_purchase",
        "nodes": [
            {"id": "wait_purchase", "type": "wait", "until_event": "purchase", "timeout": "P1D"},
            {"id": "reminder", "type": "send", "channel": "email", "template": "browse-reminder"},
            {"id": "bought", "type": "goal", "event": "purchase"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("wait_purchase", "bought", "event"),
            _edge("wait_purchase", "reminder", "timeout"),
            _edge("reminder", "done"),
        ],
    },
    templates={
        "browse-reminder": _email(
            "Browse reminder",
            "Still interested?",
            "Did something catch your eye?",
            'You were looking at {{ event.properties.product_name | default: "one of our '
            'products" }}. It is still available.',
            "Have another look",
            SHOP_LINK,
        ),
    },
)

LAPSED = StarterSegment(
    slug="lapsed-customers",
    name="Lapsed customers",
    description="Bought before, but not in the last 90 days.",
    rule={
        "all": [
            {"event": "purchase", "count": {"gte": 1}},
            {"not": {"event": "purchase", "count": {"gte": 1}, "within_days": 90}},
        ]
    },
)

WIN_BACK = Starter(
    key="win_back",
    name=gettext_lazy("Win-back"),
    summary=gettext_lazy(
        "Brings back customers who have not bought in 90 days: a we-miss-you email, then an "
        "offer a week later."
    ),
    graph={
        "name": "Win-back",
        "entry": {"type": "segment_entered", "segment": LAPSED.slug},
        "reentry": {"after_days": 180},
        "exit_when": {"event": "unsubscribed"},
        "start": "miss_you",
        "nodes": [
            {"id": "miss_you", "type": "send", "channel": "email", "template": "win-back-1"},
            {"id": "wait_purchase", "type": "wait", "until_event": "purchase", "timeout": "P7D"},
            {"id": "offer", "type": "send", "channel": "email", "template": "win-back-offer"},
            {"id": "wait_offer", "type": "wait", "until_event": "purchase", "timeout": "P7D"},
            {
                "id": "mark_lapsed",
                "type": "update_attribute",
                "attribute": "lifecycle_stage",
                "value": "lapsed",
            },
            {"id": "bought", "type": "goal", "event": "purchase"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("miss_you", "wait_purchase"),
            _edge("wait_purchase", "bought", "event"),
            _edge("wait_purchase", "offer", "timeout"),
            _edge("offer", "wait_offer"),
            _edge("wait_offer", "bought", "event"),
            _edge("wait_offer", "mark_lapsed", "timeout"),
            _edge("mark_lapsed", "done"),
        ],
    },
    templates={
        "win-back-1": _email(
            "Win-back: we miss you",
            "We miss you, " + HELLO,
            "It has been a while",
            "Here is what is new since your last visit.",
            "See what is new",
            SHOP_LINK + "/new",
        ),
        "win-back-offer": _email(
            "Win-back: offer",
            "15% off to welcome you back",
            "Come back for 15% off",
            "Use the code COMEBACK15 within the next seven days.",
            "Shop now",
            SHOP_LINK,
        ),
    },
    segments=(LAPSED,),
)

REVIEW_AND_REFERRAL = Starter(
    key="review_referral",
    name=gettext_lazy("Post-purchase review and referral"),
    summary=gettext_lazy(
        "Asks buyers for a review a week after their purchase, and invites those who write "
        "one to refer a friend."
    ),
    graph={
        "name": "Post-purchase review and referral",
        "entry": {"type": "event", "event": "purchase"},
        "reentry": {"after_days": 30},
        "start": "wait_7_days",
        "nodes": [
            {"id": "wait_7_days", "type": "wait", "duration": "P7D"},
            {"id": "ask_review", "type": "send", "channel": "email", "template": "review-request"},
            {
                "id": "wait_review",
                "type": "wait",
                "until_event": "review_submitted",
                "timeout": "P5D",
            },
            {"id": "reviewed", "type": "goal", "event": "review_submitted"},
            {"id": "referral", "type": "send", "channel": "email", "template": "referral-invite"},
            {"id": "no_review", "type": "exit"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("wait_7_days", "ask_review"),
            _edge("ask_review", "wait_review"),
            _edge("wait_review", "reviewed", "event"),
            _edge("wait_review", "no_review", "timeout"),
            _edge("reviewed", "referral"),
            _edge("referral", "done"),
        ],
    },
    templates={
        "review-request": _email(
            "Review request",
            "How do you like your order?",
            "Tell us what you think",
            "Your review helps other customers choose, and takes a minute.",
            "Write a review",
            SHOP_LINK + "/review",
        ),
        "referral-invite": _email(
            "Referral invite",
            "Thank you! Here is 10% for a friend",
            "Thanks for your review",
            "Share your code FRIEND10: your friend saves 10% and you get 10% off your next order.",
            "Invite a friend",
            SHOP_LINK + "/refer",
        ),
    },
)

BIRTHDAY = Starter(
    key="birthday",
    name=gettext_lazy("Birthday"),
    summary=gettext_lazy(
        "Sends a birthday greeting with a gift code at 9:00 on each contact's birthday (the "
        "birthday attribute, every year)."
    ),
    graph={
        "name": "Birthday",
        "entry": {
            "type": "date_attribute",
            "attribute": "birthday",
            "offset_days": 0,
            "at": "09:00",
            "yearly": True,
        },
        "reentry": "always",
        "start": "greeting",
        "nodes": [
            {
                "id": "greeting",
                "type": "send",
                "channels": ["email", "sms"],
                "template": {"email": "birthday", "sms": "birthday-sms"},
            },
            {"id": "done", "type": "exit"},
        ],
        "edges": [_edge("greeting", "done")],
    },
    templates={
        "birthday": _email(
            "Birthday",
            "Happy birthday, " + HELLO + "!",
            "Happy birthday!",
            "To celebrate, here is 20% off anything you like this week: BIRTHDAY20.",
            "Treat yourself",
            SHOP_LINK,
        ),
        "birthday-sms": _sms(
            "Birthday (SMS)",
            f"Happy birthday {HELLO}! Enjoy 20% off this week: BIRTHDAY20",
        ),
    },
)

RENEWAL = Starter(
    key="renewal",
    name=gettext_lazy("Renewal reminder"),
    summary=gettext_lazy(
        "Reminds customers seven days before their renewal date, and by SMS (or email) "
        "five days later if they have not renewed."
    ),
    graph={
        "name": "Renewal reminder",
        "entry": {
            "type": "date_attribute",
            "attribute": "renewal_date",
            "offset_days": -7,
            "at": "09:00",
        },
        "reentry": "always",
        "start": "reminder",
        "nodes": [
            {"id": "reminder", "type": "send", "channel": "email", "template": "renewal-reminder"},
            {"id": "wait_renewal", "type": "wait", "until_event": "renewed", "timeout": "P5D"},
            {
                "id": "last_call",
                "type": "send",
                "channels": ["sms", "email"],
                "template": {"sms": "renewal-last-call-sms", "email": "renewal-last-call"},
            },
            {"id": "renewed", "type": "goal", "event": "renewed"},
            {"id": "done", "type": "exit"},
        ],
        "edges": [
            _edge("reminder", "wait_renewal"),
            _edge("wait_renewal", "renewed", "event"),
            _edge("wait_renewal", "last_call", "timeout"),
            _edge("last_call", "done"),
        ],
    },
    templates={
        "renewal-reminder": _email(
            "Renewal reminder",
            "Your plan renews in a week",
            "Renewal coming up",
            'Your plan renews on {{ contact.attributes.renewal_date | default: "its renewal '
            'date" }}. Check your details so nothing gets interrupted.',
            "Review my plan",
            SHOP_LINK + "/account",
        ),
        "renewal-last-call": _email(
            "Renewal last call",
            "Two days left to renew",
            "Two days left",
            "Renew now to keep everything running without a gap.",
            "Renew now",
            SHOP_LINK + "/account",
        ),
        "renewal-last-call-sms": _sms(
            "Renewal last call (SMS)",
            f"Hi {HELLO}, your plan renews in 2 days. Renew here: {SHOP_LINK}/account",
        ),
    },
)

STARTERS = [
    WELCOME,
    ABANDONED_CART,
    BROWSE_ABANDONMENT,
    WIN_BACK,
    REVIEW_AND_REFERRAL,
    BIRTHDAY,
    RENEWAL,
]
STARTERS_BY_KEY = {starter.key: starter for starter in STARTERS}

BLANK_GRAPH = {
    "entry": {"type": "event", "event": "signed_up"},
    "reentry": "never",
    "start": "exit_1",
    "nodes": [{"id": "exit_1", "type": "exit"}],
    "edges": [],
}


class UnknownStarter(ValueError):
    pass


def starter_graph(key: str) -> dict:
    """A fresh copy of the starter's graph (the blank journey's for "blank")."""
    if key == BLANK:
        return {"name": _("New journey"), **copy.deepcopy(BLANK_GRAPH)}
    if key not in STARTERS_BY_KEY:
        raise UnknownStarter(key)
    graph = copy.deepcopy(STARTERS_BY_KEY[key].graph)
    graph["name"] = str(STARTERS_BY_KEY[key].name)
    return graph


@transaction.atomic
def create_from_starter(workspace, key: str, user=None) -> Journey:
    """A draft journey from the starter, after making the placeholder templates and segments
    it names that the workspace lacks. A slug the workspace already uses for something else
    (an SMS template where the starter sends email) gets a fresh one, in the graph too."""
    graph = starter_graph(key)
    starter = STARTERS_BY_KEY.get(key)
    if starter is not None:
        renamed = _ensure_templates(workspace, starter, user)
        _rename_templates(graph, renamed)
        segment_slugs = _ensure_segments(workspace, starter, user)
        entry = graph["entry"]
        if entry.get("type") == "segment_entered":
            entry["segment"] = segment_slugs.get(entry["segment"], entry["segment"])
    graph["name"] = _unique_name(workspace, graph["name"])
    return services.create_journey(workspace, graph, user)


def _ensure_templates(workspace, starter: Starter, user) -> dict[str, str]:
    """{starter slug: slug used} for the templates whose slug had to change."""
    existing = dict(Template.objects.for_workspace(workspace).values_list("slug", "channel"))
    renamed = {}
    for slug, data in starter.templates.items():
        if existing.get(slug) == data["channel"]:
            continue
        used = slug
        if used in existing:
            used = _free_slug(f"{slug}-{data['channel']}", existing)
            renamed[slug] = used
        template, problems = create_template(workspace, {**data, "slug": used}, user)
        if problems:  # the starters' own templates are checked by the gallery's tests
            raise services.JourneyError([f"{used}: {problems}"])
        existing[used] = template.channel
    return renamed


def _free_slug(base: str, taken) -> str:
    slug, number = base, 2
    while slug in taken:
        slug, number = f"{base}-{number}", number + 1
    return slug


def _rename_templates(graph: dict, renamed: dict[str, str]) -> None:
    if not renamed:
        return
    for node in graph["nodes"]:
        template = node.get("template")
        if isinstance(template, dict):
            node["template"] = {c: renamed.get(s, s) for c, s in template.items()}
        elif template in renamed:
            node["template"] = renamed[template]


def _ensure_segments(workspace, starter: Starter, user) -> dict[str, str]:
    slugs = {}
    for wanted in starter.segments:
        segment = Segment.objects.for_workspace(workspace).filter(slug=wanted.slug).first()
        if segment is None:
            segment = segments.create_segment(
                workspace, wanted.name, wanted.rule, wanted.description, created_by=user
            )
        slugs[wanted.slug] = segment.slug
    return slugs


def _unique_name(workspace, name: str) -> str:
    taken = set(
        Journey.objects.for_workspace(workspace)
        .filter(name__startswith=name)
        .values_list("name", flat=True)
    )
    if name not in taken:
        return name
    number = 2
    while f"{name} ({number})" in taken:
        number += 1
    return f"{name} ({number})"
