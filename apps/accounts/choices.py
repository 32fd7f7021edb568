from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    MARKETER = "marketer", _("Marketer")
    ANALYST = "analyst", _("Analyst")


class Scope(models.TextChoices):
    INGEST = "ingest", _("Ingest (write contacts and events)")
    READ = "read", _("Read")
    WRITE = "write", _("Write")
