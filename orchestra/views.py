from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from apps.accounts.access import workspace_view

# Sections of the navigation whose pages are still empty states: what the section
# will hold and how data gets there. Each is replaced by its app's own views.
EMPTY_SECTIONS = {
    "journeys": (
        _("Journeys"),
        _("A journey is each contact's path through your messages, reacting to what they do."),
    ),
    "reports": (
        _("Reports"),
        _("Reports show what your journeys and channels achieved once messages have gone out."),
    ),
}


@workspace_view()
def empty_section(request, section: str):
    title, text = EMPTY_SECTIONS[section]
    return render(request, "empty_section.html", {"section": section, "title": title, "text": text})
