"""The marketer's view of content slots: the list with last month's numbers, a slot with
its variants, the preview for one contact, and the demo page that fills slots live."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import services as accounts
from apps.accounts.access import EDIT, workspace_view
from apps.contacts.models import Contact
from apps.personalization import services
from apps.personalization.forms import ContentSlotForm, PreviewForm, VariantForm
from apps.personalization.models import ContentSlot, Variant
from apps.segments.forms import builder_config, rule_in_words

DEMO_CONTACTS = 30
DEMO_SLOTS = 2


def slot_for(request, pk: int) -> ContentSlot:
    slots = ContentSlot.objects.for_workspace(request.workspace).select_related("workspace")
    return get_object_or_404(slots, pk=pk)


def require_editor(request) -> None:
    if not request.membership.can_edit:
        raise PermissionDenied


@require_GET
@workspace_view()
def slot_list(request):
    slots = ContentSlot.objects.for_workspace(request.workspace).order_by("name")
    slots = slots.prefetch_related("variants")
    totals = services.slot_totals(request.workspace)
    context = {"slots": slots, "totals": totals, "days": services.REPORT_DAYS}
    return render(request, "personalization/slot_list.html", context)


@workspace_view(change=EDIT)
def slot_create(request):
    require_editor(request)
    form = ContentSlotForm(request.POST or None, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        slot = services.save_slot(form.save())
        messages.success(request, _("The slot %(name)s was saved.") % {"name": slot})
        return redirect("personalization:detail", pk=slot.pk)
    return render(request, "personalization/slot_form.html", {"form": form, "slot": None})


@workspace_view(change=EDIT)
def slot_edit(request, pk: int):
    require_editor(request)
    slot = slot_for(request, pk)
    form = ContentSlotForm(request.POST or None, instance=slot, workspace=request.workspace)
    if request.method == "POST" and form.is_valid():
        services.save_slot(form.save())
        messages.success(request, _("The slot %(name)s was saved.") % {"name": slot})
        return redirect("personalization:detail", pk=slot.pk)
    return render(request, "personalization/slot_form.html", {"form": form, "slot": slot})


@require_POST
@workspace_view(change=EDIT)
def slot_delete(request, pk: int):
    require_editor(request)
    slot = slot_for(request, pk)
    services.delete_slot(slot)
    messages.success(request, _("The slot %(name)s was deleted.") % {"name": slot})
    return redirect("personalization:list")


@require_GET
@workspace_view()
def slot_detail(request, pk: int):
    slot = slot_for(request, pk)
    variants = [
        (variant, rule_in_words(request.workspace, variant.rule) if variant.rule else None)
        for variant in slot.variants.order_by("-priority", "pk")
    ]
    context = {
        "slot": slot,
        "variants": variants,
        "preview_form": PreviewForm(),
        "recent_contacts": recent_contacts(request.workspace),
    }
    return render(request, "personalization/slot_detail.html", context)


def recent_contacts(workspace) -> list[Contact]:
    return list(Contact.objects.for_workspace(workspace).order_by("-id")[:DEMO_CONTACTS])


@require_GET
@workspace_view()
def slot_preview(request, pk: int):
    """Which variant a contact gets now on the page described, and why (nothing recorded)."""
    slot = slot_for(request, pk)
    form = PreviewForm(request.GET)
    form.is_valid()
    contact = services.find_contact(request.workspace, form.cleaned_data.get("contact", ""))
    decision = None
    if contact is not None:
        context = services.clean_context(form.cleaned_data)
        decision = services.preview_decision(slot, contact, context)
    context = {"slot": slot, "contact": contact, "decision": decision,
               "asked": form.cleaned_data.get("contact", ""),
               "content_json": json.dumps(decision.content, indent=2, ensure_ascii=False)
               if decision else ""}  # fmt: skip
    return render(request, "personalization/partials/slot_preview.html", context)


def variant_page(request, slot: ContentSlot, variant: Variant):
    form = VariantForm(request.POST or None, instance=variant)
    if request.method == "POST" and form.is_valid():
        variant = form.save()
        variant.slot = slot
        try:
            services.save_variant(variant)
        except services.InvalidVariant as exc:
            for name, problems in exc.errors.items():
                form.add_error(name if name in form.fields else None, problems)
        else:
            messages.success(request, _("The variant %(name)s was saved.") % {"name": variant.name})
            return redirect("personalization:detail", pk=slot.pk)
    context = {
        "form": form,
        "slot": slot,
        "variant": variant if variant.pk else None,
        "builder_config": builder_config(request.workspace),
    }
    return render(request, "personalization/variant_form.html", context)


@workspace_view(change=EDIT)
def variant_create(request, pk: int):
    require_editor(request)
    slot = slot_for(request, pk)
    return variant_page(request, slot, Variant(slot=slot))


@workspace_view(change=EDIT)
def variant_edit(request, pk: int, variant_pk: int):
    require_editor(request)
    slot = slot_for(request, pk)
    return variant_page(request, slot, get_object_or_404(slot.variants, pk=variant_pk))


@require_POST
@workspace_view(change=EDIT)
def variant_delete(request, pk: int, variant_pk: int):
    require_editor(request)
    slot = slot_for(request, pk)
    variant = get_object_or_404(slot.variants, pk=variant_pk)
    services.delete_variant(variant)
    messages.success(request, _("The variant %(name)s was deleted.") % {"name": variant.name})
    return redirect("personalization:detail", pk=slot.pk)


@workspace_view(change=EDIT)
def demo(request):
    """A page that includes orchestra-personalize.js and fills the workspace's first slots
    for a contact picked here. It needs an ingest key: pasted, passed as ?writeKey=, or
    (owners) created here; a key is shown once and never stored by the page."""
    write_key = request.GET.get("writeKey", "")
    if request.method == "POST":
        if not request.membership.can_manage:
            raise PermissionDenied
        _key, write_key = accounts.create_api_key(
            request.workspace, _("Personalization demo"), ["ingest"], created_by=request.user
        )
    slots = list(
        ContentSlot.objects.for_workspace(request.workspace)
        .filter(is_active=True)
        .order_by("name")[:DEMO_SLOTS]
    )
    contacts = [c for c in recent_contacts(request.workspace) if c.external_id]
    context = {"slots": slots, "contacts": contacts, "write_key": write_key}
    return render(request, "personalization/demo.html", context)
