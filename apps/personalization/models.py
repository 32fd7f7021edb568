from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import WorkspaceScopedModel


def empty_content() -> dict:
    return {"html": ""}


def content_summary(content) -> str:
    """A line of the content for lists: its title, else its html."""
    if not isinstance(content, dict):
        return ""
    return str(content.get("title") or content.get("html") or content.get("url") or "")


class ContentSlot(WorkspaceScopedModel):
    """A place on a website (the home page banner) whose content depends on who looks."""

    key = models.SlugField(
        _("key"), max_length=100, help_text=_('Named by the site: data-orchestra-slot="key".')
    )
    name = models.CharField(_("name"), max_length=100)
    default_content = models.JSONField(
        _("default content"),
        default=empty_content,
        help_text=_('Shown when no variant matches: {"html", "title", "image", "url"}.'),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("content slot")
        verbose_name_plural = _("content slots")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="content_slot_unique_key")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def summary(self) -> str:
        return content_summary(self.default_content)


class Variant(models.Model):
    """Content for the contacts a rule matches, on the pages its context globs match; the
    highest priority matching variant wins."""

    slot = models.ForeignKey(
        ContentSlot, on_delete=models.CASCADE, related_name="variants", verbose_name=_("slot")
    )
    name = models.SlugField(_("name"), max_length=100)
    content = models.JSONField(_("content"), default=empty_content)
    rule = models.JSONField(
        _("rule"), default=dict, blank=True, help_text=_("A segment rule; empty: every contact.")
    )
    context_match = models.JSONField(
        _("context match"),
        default=dict,
        blank=True,
        help_text=_('Globs on what the site sends, e.g. {"page": "/pricing*"}.'),
    )
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher wins."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["-priority", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "name"], name="variant_unique_name"),
            models.CheckConstraint(
                condition=~models.Q(name="default"),
                name="variant_name_not_default",
                violation_error_message=_("“default” names the slot's default content."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slot_id}: {self.name}"

    @property
    def summary(self) -> str:
        return content_summary(self.content)
