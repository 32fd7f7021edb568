"""Everything that happened to one contact, newest first, one page at a time.

The timeline merges several sources (events now; messages, segment changes and
journey steps later). Each source is a function in TIMELINE_SOURCES that answers
its newest entries older than a cursor; adding a kind of entry is adding a source.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext

from apps.contacts.models import Contact
from apps.contacts.normalize import InvalidValue, parse_timestamp

TIMELINE_PAGE_SIZE = 25


@dataclass(frozen=True)
class TimelineEntry:
    """One thing on the timeline. `kind` picks how it is drawn (timeline_entries.html)."""

    kind: str
    id: int
    occurred_at: dt.datetime
    title: str
    source: str = ""
    details: dict = field(default_factory=dict)
    url: str = ""  # the entry's own page, if it has one

    @property
    def sort_key(self) -> tuple:
        return (self.occurred_at, self.kind, self.id)

    @property
    def detail_items(self) -> list[tuple[str, str]]:
        """The details as (name, text) pairs; nested values are shown as JSON."""
        return [
            (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            for key, value in self.details.items()
        ]


@dataclass(frozen=True)
class TimelineCursor:
    """The position after the last entry shown: entries strictly older come next.

    Two entries may share a time, so the kind and id break ties; every source
    orders by the same (occurred_at, kind, id) key.
    """

    occurred_at: dt.datetime
    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.occurred_at.isoformat()}/{self.kind}/{self.id}"

    @classmethod
    def parse(cls, text: str) -> "TimelineCursor":
        """The cursor written by str(); ValueError when it is not one."""
        try:
            when, kind, pk = text.rsplit("/", 2)
            return cls(parse_timestamp(when), kind, int(pk))
        except (InvalidValue, ValueError):
            raise ValueError(f"Not a timeline cursor: {text!r}") from None

    def older_q(self, kind: str, time_field: str = "occurred_at") -> Q:
        """Rows of `kind` that sort after this cursor on a newest-first timeline."""
        at = self.occurred_at
        if kind == self.kind:
            return Q(**{f"{time_field}__lt": at}) | Q(**{time_field: at, "id__lt": self.id})
        if kind < self.kind:
            return Q(**{f"{time_field}__lte": at})
        return Q(**{f"{time_field}__lt": at})


@dataclass
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: TimelineCursor | None


TimelineSource = Callable[[Contact, TimelineCursor | None, int], list[TimelineEntry]]


def event_entries(contact: Contact, before: TimelineCursor | None, limit: int) -> list:
    events = contact.events.order_by("-occurred_at", "-id")
    if before is not None:
        events = events.filter(before.older_q("event"))
    return [
        TimelineEntry(
            kind="event",
            id=event.pk,
            occurred_at=event.occurred_at,
            title=event.name,
            source=event.get_source_display(),
            details=event.properties if isinstance(event.properties, dict) else {},
        )
        for event in events[:limit]
    ]


# What a message's entry shows (not its template's HTML).
MESSAGE_FIELDS = (
    "id", "contact_id", "channel_id", "template_version_id", "status", "reason", "subject",
    "created_at", "channel__name", "channel__type", "template_version__number",
    "template_version__template_id", "template_version__template__name",
    "template_version__template__slug",
)  # fmt: skip


def message_entries(contact: Contact, before: TimelineCursor | None, limit: int) -> list:
    """Messages to the contact, at the time each was queued, linking to its page."""
    from apps.channels.models import Message  # channels builds on contacts, not the reverse

    messages = (
        Message.objects.filter(contact=contact)
        .select_related("channel", "template_version__template")
        .only(*MESSAGE_FIELDS)
        .order_by("-created_at", "-id")
    )
    if before is not None:
        messages = messages.filter(before.older_q("message", "created_at"))
    entries = []
    for message in messages[:limit]:
        template, number = message.template_version.template, message.template_version.number
        status = message.get_status_display()
        details = {
            gettext("Channel"): message.channel.get_type_display(),
            gettext("Template"): f"{template.name} ({template.slug}, v{number})",
            gettext("Status"): f"{status}: {message.reason}" if message.reason else str(status),
        }
        if message.subject:
            details[gettext("Subject")] = message.subject
        entries.append(
            TimelineEntry(
                kind="message",
                id=message.pk,
                occurred_at=message.created_at,
                title=gettext("Message: %(template)s") % {"template": template.name},
                source=message.channel.name,
                details=details,
                url=reverse("messages:detail", args=[message.pk]),
            )
        )
    return entries


TIMELINE_SOURCES: list[TimelineSource] = [event_entries, message_entries]


def contact_timeline(
    contact: Contact,
    before: TimelineCursor | None = None,
    limit: int = TIMELINE_PAGE_SIZE,
) -> TimelinePage:
    """The contact's newest `limit` entries older than `before`, from every source."""
    entries: list[TimelineEntry] = []
    for source in TIMELINE_SOURCES:
        # One more than a page from each source tells whether anything follows.
        entries.extend(source(contact, before, limit + 1))
    entries.sort(key=lambda entry: entry.sort_key, reverse=True)
    page, rest = entries[:limit], entries[limit:]
    last = page[-1] if page and rest else None
    next_cursor = TimelineCursor(last.occurred_at, last.kind, last.id) if last else None
    return TimelinePage(page, next_cursor)
