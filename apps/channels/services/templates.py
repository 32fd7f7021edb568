"""Creating and changing templates: every problem reported at once, each change a version."""

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from apps.channels.choices import ChannelType
from apps.channels.models import Template, TemplateVersion
from apps.channels.services.rendering import template_problems


@transaction.atomic
def save_template(template: Template, data: dict, user=None) -> dict[str, list[str]]:
    """Apply `data` (name, slug, channel and the content fields) to the template; answers
    the problems by field, and saves nothing when there are any. Changed content becomes
    a new version; messages keep the version they were rendered from."""
    problems: dict[str, list[str]] = {}
    channel = data.get("channel", template.channel)
    if channel not in ChannelType.values:
        problems["channel"] = [_("One of %(c)s.") % {"c": ", ".join(ChannelType.values)}]
    name = str(data.get("name", template.name) or "").strip()
    if not name:
        problems["name"] = [_("Give the template a name.")]
    slug = slugify(str(data.get("slug") or template.slug or name))[:100]
    taken = Template.objects.for_workspace(template.workspace).filter(slug=slug)
    if slug and taken.exclude(pk=template.pk).exists():
        problems["slug"] = [_("Another template has the slug %(slug)s.") % {"slug": slug}]
    content = {
        field: str(data.get(field, getattr(template, field)) or "")
        for field in Template.CONTENT_FIELDS
    }
    if channel in ChannelType.values:
        problems.update(template_problems(channel, content))
    if problems:
        return problems
    changed = content != template.content() or channel != template.channel
    template.name, template.slug, template.channel = name, slug, channel
    for field, value in content.items():
        setattr(template, field, value)
    if changed or not template.version:
        template.version += 1
    template.save()
    if not template.versions.filter(number=template.version).exists():
        TemplateVersion.objects.create(
            template=template, number=template.version, created_by=user, **content
        )
    return {}


def create_template(workspace, data: dict, user=None) -> tuple[Template | None, dict]:
    template = Template(workspace=workspace)
    problems = save_template(template, data, user)
    return (None if problems else template), problems


def current_version(template: Template) -> TemplateVersion:
    return template.versions.get(number=template.version)
