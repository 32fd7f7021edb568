from django.urls import path

from apps.contacts.views import contacts, exports, imports

app_name = "contacts"

urlpatterns = [
    # The contact list and the customer 360 page (views/contacts.py)
    path("", contacts.contact_list, name="list"),
    path("bulk/add-to-list/", contacts.bulk_add_to_list, name="bulk_add_to_list"),
    path("lists/", contacts.list_index, name="lists"),
    path("<int:pk>/", contacts.contact_detail, name="detail"),
    path("<int:pk>/edit/", contacts.contact_edit, name="edit"),
    path("<int:pk>/consent/", contacts.contact_consent, name="consent"),
    path("<int:pk>/lists/", contacts.contact_list_membership, name="list_membership"),
    path("<int:pk>/timeline/", contacts.contact_timeline_page, name="timeline"),
    path("<int:pk>/export.json", contacts.contact_export_json, name="export_json"),
    path("<int:pk>/erase/", contacts.contact_erase, name="erase"),
    # CSV import and export (views/imports.py, views/exports.py)
    path("imports/", imports.import_list, name="import_list"),
    path("imports/new/", imports.import_start, name="import_start"),
    path("imports/<int:pk>/", imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/mapping/", imports.import_mapping, name="import_mapping"),
    path("imports/<int:pk>/progress/", imports.import_progress, name="import_progress"),
    path("imports/<int:pk>/failed-rows.csv", imports.import_errors, name="import_errors"),
    path("export.csv", exports.contact_export, name="export"),
]
