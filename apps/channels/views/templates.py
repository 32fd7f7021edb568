"""The marketer's templates: the list, the editor with its live preview for a chosen contact
and its test send, the version history, and deleting."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.access import EDIT, workspace_view
from apps.channels.choices import ChannelType
from apps.channels.forms import FIELD_CHANNELS, TemplateFilterSet, TemplateForm, TestSendForm
from apps.channels.models import Template, TemplateVersion
from apps.channels.services import editor
from apps.channels.services.templates import create_template, current_version, save_template
from apps.contacts.filters import ContactFilterSet
from apps.contacts.models import Contact
from apps.contacts.views.contacts import wants_partial

PICKER_CONTACTS = 20  # contacts offered by the preview's picker at a time
HISTORY_SHOWN = 50  # versions listed on the editor page


def template_for(request, pk: int) -> Template:
    return get_object_or_404(Template.objects.for_workspace(request.workspace), pk=pk)


def require_editor(request) -> None:
    if not request.membership.can_edit:
        raise PermissionDenied


# The list -------------------------------------------------------------------------------


@require_GET
@workspace_view()
@vary_on_headers("HX-Request")
def template_list(request):
    templates = Template.objects.for_workspace(request.workspace).order_by("name", "pk")
    filterset = TemplateFilterSet(request.GET or None, queryset=templates)
    context = {"templates": filterset.qs, "filter_form": filterset.form}
    if wants_partial(request):
        return render(request, "channels/partials/template_table.html", context)
    return render(request, "channels/template_list.html", context)


# The editor -----------------------------------------------------------------------------


def picker_contacts(workspace, selected: Contact | None) -> list[Contact]:
    contacts = list(Contact.objects.for_workspace(workspace).order_by("-id")[:PICKER_CONTACTS])
    if selected is not None and selected not in contacts:
        contacts.insert(0, selected)
    return contacts


def editor_page(request, form: TemplateForm, template: Template | None = None):
    contact = editor.pick_contact(request.workspace, request.GET.get("contact"))
    versions = []
    if template is not None:
        versions = list(
            template.versions.select_related("created_by").order_by("-number")[:HISTORY_SHOWN]
        )
    context = {
        "form": form,
        "template": template,
        "versions": versions,
        "can_edit": request.membership.can_edit,
        "contact": contact,
        "contacts": picker_contacts(request.workspace, contact),
        "variables": editor.template_variables(request.workspace),
        "test_form": TestSendForm(),
        **channel_visibility(),
    }
    return render(request, "channels/template_form.html", context)


def channel_visibility() -> dict:
    """What the page's CSS needs to show each channel's fields only."""
    return {
        "channel_types": ChannelType.values,
        "field_channels": {name: " ".join(types) for name, types in FIELD_CHANNELS.items()},
        "test_send_channels": " ".join(sorted(editor.TEST_SEND_TYPES)),
    }


@workspace_view(change=EDIT)
def template_create(request):
    require_editor(request)
    channel = request.GET.get("channel")
    initial = {"channel": channel if channel in ChannelType.values else ChannelType.EMAIL}
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        template, problems = create_template(request.workspace, form.cleaned_data, request.user)
        if problems:
            form.add_problems(problems)
        else:
            messages.success(
                request, _("The template %(name)s was saved (version 1).") % {"name": template}
            )
            return redirect("templates:edit", pk=template.pk)
    return editor_page(request, form)


@workspace_view(change=EDIT)
def template_edit(request, pk: int):
    template = template_for(request, pk)
    initial = {
        "name": template.name,
        "slug": template.slug,
        "channel": template.channel,
        **template.content(),
    }
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        before = template.version
        problems = save_template(template, form.cleaned_data, request.user)
        if problems:
            form.add_problems(problems)
        else:
            if template.version == before:
                text = _("Nothing changed in the content; %(name)s stays at version %(number)s.")
            else:
                text = _("The template %(name)s was saved as version %(number)s.")
            messages.success(request, text % {"name": template, "number": template.version})
            return redirect("templates:edit", pk=template.pk)
    return editor_page(request, form, template)


@require_GET
@workspace_view()
def template_version(request, pk: int, number: int):
    """One version as it was saved, read only, previewed for the newest contact."""
    template = template_for(request, pk)
    version = get_object_or_404(
        TemplateVersion.objects.select_related("created_by"), template=template, number=number
    )
    contact = editor.pick_contact(request.workspace, request.GET.get("contact"))
    version.template = template
    context = {
        "template": template,
        "version": version,
        "contact": contact,
        **preview_context(
            editor.preview(
                version, template.channel, editor.preview_scope(request.workspace, contact)
            ),
            template.channel,
            contact,
        ),
    }
    return render(request, "channels/template_version.html", context)


# The live preview, the contact picker, the test send --------------------------------------


def preview_context(result: editor.Preview, channel: str, contact: Contact | None) -> dict:
    rendered = result.rendered
    return {
        "rendered": rendered,
        "problems": result.problems,
        "channel": channel,
        "contact": contact,
        "body_length": len(rendered.body) if rendered else 0,
    }


def posted_draft(request) -> tuple[str, TemplateVersion] | None:
    """The editor's content exactly as posted, as an unsaved version (None: no channel)."""
    channel = request.POST.get("channel", "")
    if channel not in ChannelType.values:
        return None
    content = {name: request.POST.get(name, "") for name in Template.CONTENT_FIELDS}
    return channel, editor.draft_version(request.workspace, channel, content)


@vary_on_headers("HX-Request")
@workspace_view(change=EDIT)
def template_preview(request):
    """The editor's preview: POST renders the draft as typed (marketers, owners); GET renders
    a saved template's current version (`?template=<id>`, for anyone who may read it)."""
    params = request.POST if request.method == "POST" else request.GET
    contact = editor.pick_contact(request.workspace, params.get("contact"))
    if request.method == "POST":
        draft = posted_draft(request)
        if draft is None:
            result = editor.Preview(problems=[_("Choose the channel.")])
            return render(
                request,
                "channels/partials/template_preview.html",
                preview_context(result, "", contact),
            )
        channel, version = draft
    else:
        template_id = request.GET.get("template", "")
        if not template_id.isdigit():
            raise Http404
        template = template_for(request, int(template_id))
        channel, version = template.channel, current_version(template)
    result = editor.preview(version, channel, editor.preview_scope(request.workspace, contact))
    context = preview_context(result, channel, contact)
    return render(request, "channels/partials/template_preview.html", context)


@require_GET
@workspace_view()
def template_contact_search(request):
    """The preview's contact picker: the workspace's contacts matching `q`, as options."""
    contacts = Contact.objects.for_workspace(request.workspace)
    query = request.GET.get("q", "").strip()
    if query:
        contacts = ContactFilterSet({"q": query}, queryset=contacts).qs
    found = list(contacts.order_by("-id")[:PICKER_CONTACTS])
    response = render(
        request, "channels/partials/contact_options.html", {"contacts": found, "query": query}
    )
    # The preview listens for this: the picker's first option is now the chosen contact.
    response["HX-Trigger-After-Settle"] = "preview-contact-changed"
    return response


@require_POST
@workspace_view(change=EDIT)
def template_send_test(request):
    """Send the draft as typed, rendered for the chosen contact, to the address typed."""
    contact = editor.pick_contact(request.workspace, request.POST.get("contact"))
    test_form = TestSendForm(request.POST)
    test_form.is_valid()
    context = {"sent_to": None, "error": None, "problems": []}
    draft = posted_draft(request)
    if draft is None:
        context["error"] = _("Choose the channel.")
    else:
        channel, version = draft
        try:
            context["sent_to"] = editor.send_test(
                request.workspace,
                version,
                channel,
                test_form.cleaned_data.get("recipient") or "",
                contact,
            )
        except editor.TestSendFailed as failure:
            context["error"], context["problems"] = failure.message, failure.problems
    return render(request, "channels/partials/test_send_result.html", context)


# Deleting -------------------------------------------------------------------------------


@workspace_view(change=EDIT)
def template_delete(request, pk: int):
    template = template_for(request, pk)
    if request.method == "POST":
        try:
            editor.delete_template(template)
        except editor.TemplateInUse as refusal:
            messages.error(request, str(refusal))
            return redirect("templates:edit", pk=template.pk)
        messages.success(request, _("The template %(name)s was deleted.") % {"name": template})
        return redirect("templates:list")
    require_editor(request)
    return render(request, "channels/template_delete.html", {"template": template})
