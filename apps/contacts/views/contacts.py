"""The marketer's view of contacts: the list, the lists page and the customer 360 page."""

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import EDIT, workspace_view
from apps.contacts.choices import ConsentChannel, ConsentStatus, EventSource
from apps.contacts.filters import ContactFilterSet
from apps.contacts.forms.contacts import (
    BulkAddToListForm,
    ConsentForm,
    ContactListForm,
    ContactProfileForm,
    EraseContactForm,
    ListMembershipForm,
    attribute_formset,
    attribute_rows,
    fixed_attributes,
    prepare_contact_filter_form,
    refers_to_another_workspace,
    workspace_lists,
)
from apps.contacts.models import Contact, ContactList
from apps.contacts.services import consent, lists, privacy, profiles
from apps.contacts.services.timeline import TimelineCursor, contact_timeline

CONTACTS_PER_PAGE = 50
CONSENT_HISTORY_SHOWN = 20
ANONYMOUS_IDS_SHOWN = 20


def wants_partial(request) -> bool:
    """An htmx request for a piece of the page (not a boosted link, not a history restore)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def contact_for(request, pk: int) -> Contact:
    return get_object_or_404(Contact.objects.for_workspace(request.workspace), pk=pk)


def safe_next(request, fallback: str) -> str:
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        return next_url
    return fallback


# The contact list ---------------------------------------------------------------------


@workspace_view()
@vary_on_headers("HX-Request")
def contact_list(request):
    contact_lists = list(workspace_lists(request.workspace))
    filterset = ContactFilterSet(
        request.GET or None, queryset=Contact.objects.for_workspace(request.workspace)
    )
    prepare_contact_filter_form(filterset.form, contact_lists)
    contacts = filterset.qs.order_by("-id")
    # Keyset pagination: "after" is the last id of the previous page, so a page costs
    # the same at any depth and nothing counts all contacts.
    after = request.GET.get("after", "")
    if after.isdigit():
        contacts = contacts.filter(id__lt=int(after))
    page = list(contacts[: CONTACTS_PER_PAGE + 1])
    has_next = len(page) > CONTACTS_PER_PAGE
    page = page[:CONTACTS_PER_PAGE]
    params = request.GET.copy()
    params.pop("after", None)
    context = {
        "filterset": filterset,
        "filter_form": filterset.form,
        "contacts": page,
        "contact_lists": contact_lists,
        "query": params.urlencode(),
        "is_first_page": not after.isdigit(),
        "next_after": page[-1].pk if has_next else None,
    }
    if wants_partial(request):
        return render(request, "contacts/partials/contact_table.html", context)
    return render(request, "contacts/contact_list.html", context)


@require_POST
@workspace_view(change=EDIT)
def bulk_add_to_list(request):
    form = BulkAddToListForm(request.workspace, request.POST)
    if not form.is_valid():
        if refers_to_another_workspace(form):
            raise Http404
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        contact_list = form.cleaned_data["contact_list"]
        added = lists.add_to_list(contact_list, form.cleaned_data["contact"], EventSource.UI)
        messages.success(
            request,
            ngettext(
                "%(count)d contact added to %(list)s.",
                "%(count)d contacts added to %(list)s.",
                added,
            )
            % {"count": added, "list": contact_list.name},
        )
    return redirect(safe_next(request, reverse("contacts:list")))


# Lists --------------------------------------------------------------------------------


@workspace_view(change=EDIT)
def list_index(request):
    form = ContactListForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        contact_list = lists.create_list(
            request.workspace, form.cleaned_data["name"], form.cleaned_data["description"]
        )
        messages.success(request, _("The list %(name)s was created.") % {"name": contact_list})
        return redirect("contacts:lists")
    contact_lists = ContactList.objects.for_workspace(request.workspace).annotate(
        member_count=Count("memberships")
    )
    return render(request, "contacts/list_index.html", {"form": form, "lists": contact_lists})


# The contact page (customer 360) ------------------------------------------------------


def consent_context(contact: Contact) -> dict:
    current = consent.consent_by_channel(contact)
    return {
        "contact": contact,
        "consent_rows": [
            (channel, label, current[channel]) for channel, label in ConsentChannel.choices
        ],
        "consent_history": list(contact.consent_changes.all()[:CONSENT_HISTORY_SHOWN]),
        "consent_statuses": ConsentStatus.choices,
    }


def lists_context(request, contact: Contact) -> dict:
    member_of = list(lists.lists_of(contact))
    ids = {cl.pk for cl in member_of}
    return {
        "contact": contact,
        "member_of": member_of,
        "other_lists": [cl for cl in workspace_lists(request.workspace) if cl.pk not in ids],
    }


def timeline_context(contact: Contact, before: TimelineCursor | None = None) -> dict:
    page = contact_timeline(contact, before)
    return {
        "contact": contact,
        "entries": page.entries,
        "next_cursor": str(page.next_cursor) if page.next_cursor else "",
    }


@require_GET
@workspace_view()
def contact_detail(request, pk: int):
    contact = contact_for(request, pk)
    anonymous_ids = list(contact.anonymous_ids.order_by("-created_at")[: ANONYMOUS_IDS_SHOWN + 1])
    context = {
        "contact": contact,
        "attributes": attribute_rows(contact),
        "anonymous_ids": anonymous_ids[:ANONYMOUS_IDS_SHOWN],
        "more_anonymous_ids": len(anonymous_ids) > ANONYMOUS_IDS_SHOWN,
        "merges": list(contact.merges.all()),
        **consent_context(contact),
        **lists_context(request, contact),
        **timeline_context(contact),
    }
    return render(request, "contacts/contact_detail.html", context)


@workspace_view(change=EDIT)
def contact_edit(request, pk: int):
    contact = contact_for(request, pk)
    data = request.POST if request.method == "POST" else None
    form = ContactProfileForm.for_contact(contact, data)
    formset = attribute_formset(contact, data)
    if data is not None and form.is_valid() and formset.is_valid():
        changes = {**form.cleaned_data, "attributes": formset.attributes(contact.attributes)}
        errors = profiles.update_contact(contact, changes)
        if not errors:
            messages.success(request, _("The contact was saved."))
            return redirect("contacts:detail", pk=contact.pk)
        for name, problems in errors.items():
            form.add_error(name if name in form.fields else None, problems)
    return render(
        request,
        "contacts/contact_form.html",
        {
            "contact": contact,
            "form": form,
            "formset": formset,
            "fixed_attributes": fixed_attributes(contact),
        },
    )


@require_POST
@workspace_view(change=EDIT)
def contact_consent(request, pk: int):
    contact = contact_for(request, pk)
    form = ConsentForm(request.POST)
    if form.is_valid():
        channel, status = form.cleaned_data["channel"], form.cleaned_data["status"]
        source = f"ui:{request.user.email}"[:100]  # the width of Consent.source
        _consent, changed = consent.set_consent(contact, channel, status, source=source)
        if not wants_partial(request):
            labels = {
                "channel": ConsentChannel(channel).label,
                "status": ConsentStatus(status).label,
            }
            if changed:
                messages.success(request, _("%(channel)s consent is now %(status)s.") % labels)
            else:
                messages.info(request, _("%(channel)s consent was already %(status)s.") % labels)
    elif not wants_partial(request):
        messages.error(request, _("Choose a channel and a consent status."))
    if wants_partial(request):
        context = {**consent_context(contact), "consent_errors": form.errors}
        return render(request, "contacts/partials/consent_panel.html", context)
    return redirect("contacts:detail", pk=contact.pk)


@require_POST
@workspace_view(change=EDIT)
def contact_list_membership(request, pk: int):
    contact = contact_for(request, pk)
    form = ListMembershipForm(request.workspace, request.POST)
    if form.is_valid():
        contact_list = form.cleaned_data["contact_list"]
        if form.cleaned_data["action"] == ListMembershipForm.ADD:
            lists.add_to_list(contact_list, [contact.pk], EventSource.UI)
            done = _("Added to %(list)s.")
        else:
            lists.remove_from_list(contact_list, [contact.pk])
            done = _("Removed from %(list)s.")
        if not wants_partial(request):
            messages.success(request, done % {"list": contact_list.name})
    elif refers_to_another_workspace(form):
        raise Http404
    elif not wants_partial(request):
        messages.error(request, _("Choose a list."))
    if wants_partial(request):
        return render(
            request, "contacts/partials/contact_lists.html", lists_context(request, contact)
        )
    return redirect("contacts:detail", pk=contact.pk)


@require_GET
@workspace_view()
def contact_timeline_page(request, pk: int):
    contact = contact_for(request, pk)
    before = None
    if request.GET.get("before"):
        try:
            before = TimelineCursor.parse(request.GET["before"])
        except ValueError:
            return HttpResponseBadRequest(_("That is not a position on the timeline."))
    context = timeline_context(contact, before)
    if wants_partial(request):
        return render(request, "contacts/partials/timeline_entries.html", context)
    return render(request, "contacts/contact_timeline.html", context)


@require_GET
@workspace_view()
def contact_export_json(request, pk: int):
    contact = contact_for(request, pk)
    response = JsonResponse(privacy.export_contact(contact), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
    return response


@workspace_view(change=EDIT)
def contact_erase(request, pk: int):
    contact = contact_for(request, pk)
    form = EraseContactForm(contact, request.POST or None)
    if request.method == "POST" and form.is_valid():
        record = privacy.erase_contact(contact, requested_by=request.user, via=EventSource.UI)
        messages.success(
            request,
            _("Contact #%(id)s was erased with its events; a record of the erasure was kept.")
            % {"id": record.contact_id_erased},
        )
        return redirect("contacts:list")
    return render(request, "contacts/contact_erase.html", {"contact": contact, "form": form})
