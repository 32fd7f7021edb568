"""What the template editor and the templates API need beyond saving: a draft rendered for a
contact (the live preview), a test send of a draft, the variables a template may use, and
deleting a template that no message was sent from."""

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from liquid.exceptions import LiquidError

from apps.accounts.models import Workspace
from apps.channels import providers
from apps.channels.choices import ChannelType
from apps.channels.models import Message, Template, TemplateVersion
from apps.channels.services import rendering
from apps.channels.services.outbox import default_channel
from apps.channels.services.scope import scope_for
from apps.contacts.models import Contact
from apps.contacts.normalize import InvalidValue, normalize_email, normalize_phone

log = logging.getLogger(__name__)

# Channel types a test can be sent on, to an address the marketer types.
TEST_SEND_TYPES = {ChannelType.EMAIL, ChannelType.SMS}
TEST_SUBJECT_PREFIX = "[Test] "


class TestSendFailed(Exception):
    """A test send that did not go out; the message says why, for the marketer."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class TemplateInUse(Exception):
    """Messages were sent from the template: its versions must stay."""


# Drafts and previews --------------------------------------------------------------------


def draft_version(workspace: Workspace, channel: str, content: dict) -> TemplateVersion:
    """Content as typed in the editor, shaped like a saved version (pk None: never cached)."""
    template = Template(workspace=workspace, channel=channel)
    values = {name: str(content.get(name) or "") for name in Template.CONTENT_FIELDS}
    return TemplateVersion(template=template, number=0, **values)


def pick_contact(workspace: Workspace, contact_id) -> Contact | None:
    """The contact asked for if it is the workspace's, else the newest one (None: no contacts)."""
    contacts = Contact.objects.for_workspace(workspace)
    if str(contact_id or "").isdigit():
        contact = contacts.filter(pk=int(contact_id)).first()
        if contact is not None:
            return contact
    return contacts.order_by("-id").first()


def sample_scope(workspace: Workspace) -> dict:
    """What a template sees when the workspace has no contacts yet."""
    return {
        "contact": {
            "id": 0,
            "external_id": "sample-1",
            "email": "ada@example.com",
            "phone": "+4520123456",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "name": "Ada Lovelace",
            "timezone": workspace.timezone,
            "locale": "en",
            "attributes": {},
            "segments": [],
            "created_at": timezone.now().isoformat(),
        },
        "event": {},
        "workspace": {"name": workspace.name},
    }


def preview_scope(workspace: Workspace, contact: Contact | None) -> dict:
    return scope_for(contact, workspace) if contact is not None else sample_scope(workspace)


@dataclass
class Preview:
    rendered: rendering.Rendered | None = None
    problems: list[str] = field(default_factory=list)


def preview(version: TemplateVersion, channel: str, scope: dict) -> Preview:
    """The version rendered as it would go out (links untracked), with every problem in
    words instead of an error: those found on save, and those only rendering finds (an
    unknown filter, say)."""
    found = rendering.template_problems(channel, version.content())
    problems = [
        f"{_field_label(name)}: {problem}"
        for name in Template.CONTENT_FIELDS  # in the editor's order
        for problem in found.get(name, [])
    ]
    try:
        rendered = rendering.render_message(version, scope, None, channel)
    except Exception as error:  # whatever the marketer typed, the preview answers
        problems.extend(_render_problems(version, scope) or [str(error)])
        return Preview(None, _unique(problems))
    return Preview(rendered, _unique(problems))


def _render_problems(version: TemplateVersion, scope: dict) -> list[str]:
    """Which field failed to render, and on which line."""
    problems = []
    for name, source in version.content().items():
        if not source:
            continue
        try:
            rendering.liquid.from_string(source).render(**scope)
        except LiquidError as error:
            index = getattr(error.token, "start_index", -1)
            message = rendering._line_message(source, index, error.message)
            problems.append(f"{_field_label(name)}: {message}")
    return problems


FIELD_LABELS = {
    "subject": gettext_lazy("Subject"),
    "preheader": gettext_lazy("Preheader"),
    "html": gettext_lazy("HTML"),
    "text": gettext_lazy("Text"),
    "body": gettext_lazy("Body"),
}


def _field_label(name: str) -> str:
    return str(FIELD_LABELS.get(name, name))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Test sends -----------------------------------------------------------------------------


def send_test(
    workspace: Workspace,
    version: TemplateVersion,
    channel_type: str,
    recipient: str,
    contact: Contact | None,
) -> str:
    """Render the version for the contact and send it at once to the address typed, through
    the workspace's default channel of the type. No message row: nothing is tracked or
    counted. Answers the address it went to; raises TestSendFailed saying why not."""
    if channel_type not in TEST_SEND_TYPES:
        raise TestSendFailed(_("Test sends are for email and SMS templates."))
    try:
        if channel_type == ChannelType.EMAIL:
            address = normalize_email(recipient.strip())
        else:
            address = normalize_phone(recipient.strip())
    except InvalidValue as error:
        raise TestSendFailed(str(error)) from None
    if not address:
        raise TestSendFailed(
            _("Type the email address to send the test to.")
            if channel_type == ChannelType.EMAIL
            else _("Type the phone number to send the test to.")
        )
    result = preview(version, channel_type, preview_scope(workspace, contact))
    if result.problems or result.rendered is None:
        raise TestSendFailed(_("Fix the template's problems first."), result.problems)
    channel = default_channel(workspace, channel_type)
    if channel is None:
        raise TestSendFailed(
            _("There is no active %(type)s channel. An owner can add one under Settings.")
            % {"type": ChannelType(channel_type).label}
        )
    rendered = result.rendered
    subject = rendered.subject
    if channel_type == ChannelType.EMAIL:
        subject = TEST_SUBJECT_PREFIX + subject
    outgoing = providers.Outgoing(
        message_id=0,
        contact_id=contact.pk if contact is not None else 0,
        recipient=address,
        subject=subject,
        html=rendered.html,
        text=rendered.text,
        body=rendered.body,
        data={"context": {"test": True}, "contact": preview_scope(workspace, contact)["contact"]},
    )
    try:
        with providers.for_channel(channel) as provider:
            provider.send(outgoing)
    except providers.SendError as error:
        raise TestSendFailed(
            _("%(channel)s did not send it: %(error)s") % {"channel": channel, "error": error}
        ) from None
    except Exception as error:  # a provider's bug or bad settings: said, not a 500
        log.exception("Test send through channel %s failed", channel.pk)
        raise TestSendFailed(
            _("%(channel)s did not send it: %(error)s") % {"channel": channel, "error": error}
        ) from None
    return address


# What a template may use ----------------------------------------------------------------

CONTACT_VARIABLES = [
    ("contact.first_name", gettext_lazy("First name")),
    ("contact.last_name", gettext_lazy("Last name")),
    ("contact.name", gettext_lazy("First and last name")),
    ("contact.email", gettext_lazy("Email address")),
    ("contact.phone", gettext_lazy("Phone number")),
    ("contact.external_id", gettext_lazy("Your id for the contact")),
    ("contact.timezone", gettext_lazy("Time zone")),
    ("contact.locale", gettext_lazy("Language and region")),
    ("contact.created_at", gettext_lazy("When the contact was created")),
    ("contact.segments", gettext_lazy("Slugs of the segments the contact is in")),
]
OTHER_VARIABLES = [
    ("event.name", gettext_lazy("The event that triggered the message")),
    ("event.properties.…", gettext_lazy("Its properties, e.g. event.properties.amount")),
    ("event.occurred_at", gettext_lazy("When it happened")),
    ("workspace.name", gettext_lazy("This workspace's name")),
    ("unsubscribe_url", gettext_lazy("The contact's unsubscribe link (added when missing)")),
]


def template_variables(workspace: Workspace) -> list[tuple[str, str]]:
    """(variable, what it is) for the editor's help panel, with the attribute names seen on
    the workspace's contacts."""
    from apps.segments.services import known_attributes

    attributes = [
        (f"contact.attributes.{known.name}", _("Attribute (%(type)s)") % {"type": known.type})
        for known in known_attributes(workspace)
    ]
    if not attributes:
        attributes = [("contact.attributes.…", _("An attribute, e.g. contact.attributes.plan"))]
    return [
        *((name, str(label)) for name, label in CONTACT_VARIABLES),
        *attributes,
        *((name, str(label)) for name, label in OTHER_VARIABLES),
    ]


# Deleting -------------------------------------------------------------------------------


def delete_template(template: Template) -> None:
    """Delete the template and its versions; refused while messages keep a version or a
    journey (not archived) sends it."""
    from apps.journeys.services.journeys import journeys_sending

    journeys = journeys_sending(template)
    if journeys:
        raise TemplateInUse(
            _("%(name)s cannot be deleted: the journeys %(journeys)s send it.")
            % {"name": template.name, "journeys": ", ".join(j.name for j in journeys)}
        )
    sent = Message.objects.filter(template_version__template=template).count()
    if sent:
        raise TemplateInUse(
            ngettext(
                "%(name)s cannot be deleted: %(count)s message was sent from it and keeps the "
                "version it was rendered from.",
                "%(name)s cannot be deleted: %(count)s messages were sent from it and keep the "
                "version they were rendered from.",
                sent,
            )
            % {"name": template.name, "count": sent}
        )
    try:
        with transaction.atomic():
            template.delete()
    except ProtectedError:  # a message was queued from it just now
        raise TemplateInUse(
            _("%(name)s cannot be deleted: messages were sent from it.") % {"name": template.name}
        ) from None
