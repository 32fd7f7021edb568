from django.urls import path

from apps.contacts.views import contacts

app_name = "contacts"

urlpatterns = [
    # The contact list and the customer 360 page (views/contacts.py)
    path("", contacts.contact_list, name="list"),
    # CSV import and export (views/imports.py, views/exports.py)
]
