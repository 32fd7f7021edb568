from django.db import models
from django.utils.translation import gettext_lazy as _


class EventSource(models.TextChoices):
    API = "api", _("API")
    SEGMENT = "segment", _("Segment-compatible ingest")
    IMPORT = "import", _("CSV import")
    UI = "ui", _("Orchestra UI")
    SYSTEM = "system", _("Orchestra")


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Web push")


class ConsentStatus(models.TextChoices):
    SUBSCRIBED = "subscribed", _("Subscribed")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    UNKNOWN = "unknown", _("Unknown")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Waiting for column mapping")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class AttributeType(models.TextChoices):
    STRING = "string", _("Text")
    NUMBER = "number", _("Number")
    BOOLEAN = "boolean", _("Yes/no")
    DATE = "date", _("Date")
    DATETIME = "datetime", _("Date and time")
