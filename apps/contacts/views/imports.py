"""CSV import in the browser: upload, map the columns, watch it run, fetch the failed rows."""

from pathlib import PurePath

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from apps.accounts.access import EDIT, workspace_view
from apps.contacts.choices import ImportStatus
from apps.contacts.forms.imports import ContactImportMappingForm, ContactImportUploadForm
from apps.contacts.models import ContactImport
from apps.contacts.services import imports

IMPORTS_PER_PAGE = 50


def import_for(request, pk: int) -> ContactImport:
    # The failed rows can run to megabytes; only the download reads them.
    scoped = ContactImport.objects.for_workspace(request.workspace).defer("errors")
    return get_object_or_404(scoped.select_related("contact_list", "created_by"), pk=pk)


def progress_context(contact_import: ContactImport) -> dict:
    return {
        "contact_import": contact_import,
        "polling": contact_import.status in (ImportStatus.QUEUED, ImportStatus.RUNNING),
        "is_done": contact_import.status in (ImportStatus.DONE, ImportStatus.FAILED),
    }


@workspace_view()
def import_list(request):
    history = (
        ContactImport.objects.for_workspace(request.workspace)
        .select_related("contact_list", "created_by")
        .defer("errors", "mapping")
    )
    page = Paginator(history, IMPORTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "contacts/import_list.html", {"page": page})


@workspace_view(change=EDIT)
def import_start(request):
    form = ContactImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        contact_import = imports.create_import(
            request.workspace, form.cleaned_data["file"], form.csv_format, request.user
        )
        return redirect("contacts:import_mapping", contact_import.pk)
    return render(request, "contacts/import_start.html", {"form": form})


@workspace_view(change=EDIT)
def import_mapping(request, pk: int):
    contact_import = import_for(request, pk)
    if contact_import.status != ImportStatus.UPLOADED:
        return redirect("contacts:import_detail", contact_import.pk)
    preview = imports.read_preview(contact_import)
    if request.htmx and "column" in request.GET:
        # A column's select changed: answer that column's row, as it now looks.
        form = ContactImportMappingForm(contact_import, preview, request.GET)
        try:
            column = form.column(int(request.GET["column"]))
        except (ValueError, IndexError):
            raise Http404 from None
        return render(request, "contacts/partials/import_column.html", {"column": column})
    form = ContactImportMappingForm(contact_import, preview, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            imports.start_import(
                contact_import,
                data["columns"],
                contact_list=data["contact_list"],
                new_list_name=data["new_list_name"],
                consent_channel=data["consent_channel"],
                consent_status=data["consent_status"],
                consent_source=data["consent_source"].strip(),
            )
        except imports.ImportAlreadyStarted:
            messages.info(request, _("This import has already started."))
        return redirect("contacts:import_detail", contact_import.pk)
    return render(
        request,
        "contacts/import_mapping.html",
        {"contact_import": contact_import, "form": form, "preview": preview},
    )


@workspace_view()
def import_detail(request, pk: int):
    contact_import = import_for(request, pk)
    return render(request, "contacts/import_detail.html", progress_context(contact_import))


@workspace_view()
def import_progress(request, pk: int):
    contact_import = import_for(request, pk)
    return render(
        request, "contacts/partials/import_progress.html", progress_context(contact_import)
    )


@workspace_view()
def import_errors(request, pk: int):
    contact_import = get_object_or_404(
        ContactImport.objects.for_workspace(request.workspace), pk=pk
    )
    response = HttpResponse(
        imports.failed_rows_csv(contact_import), content_type="text/csv; charset=utf-8"
    )
    stem = PurePath(contact_import.original_name).stem or "contacts"
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{stem}-failed-rows.csv"
    )
    return response
