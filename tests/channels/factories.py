import factory

from apps.channels.choices import ChannelType
from apps.channels.models import Channel
from apps.channels.services.templates import create_template


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    name = factory.Sequence(lambda n: f"Channel {n}")
    type = ChannelType.EMAIL
    provider = "server"


def email_template(workspace, slug="welcome", **content):
    """A saved email template (version 1) of the workspace."""
    data = {
        "name": slug.replace("-", " ").title(),
        "slug": slug,
        "channel": ChannelType.EMAIL,
        "subject": "Hello {{ contact.first_name | default: 'there' }}",
        "html": "<html><head><style>p { color: #333 }</style></head><body>"
        "<p>Hi {{ contact.first_name | default: 'there' }}, see "
        '<a href="https://shop.example.com/new">what is new</a>.</p></body></html>',
        **content,
    }
    template, problems = create_template(workspace, data)
    assert not problems, problems
    return template
