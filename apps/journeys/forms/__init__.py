"""The builder's forms: one per node type (nodes.py), the journey's own settings
(journey.py), the steps editor that puts them all on one page (steps.py), and what they are
made of (fields.py)."""

from apps.journeys.forms.fields import ATTRIBUTES_DATALIST, EVENTS_DATALIST, Vocabulary
from apps.journeys.forms.journey import (
    ContactSearchForm,
    JourneyFilterSet,
    JourneySettingsForm,
    settings_of,
)
from apps.journeys.forms.nodes import NODE_FORMS, NodeForm, node_form

__all__ = [
    "ATTRIBUTES_DATALIST",
    "EVENTS_DATALIST",
    "NODE_FORMS",
    "ContactSearchForm",
    "JourneyFilterSet",
    "JourneySettingsForm",
    "NodeForm",
    "Vocabulary",
    "node_form",
    "settings_of",
]
