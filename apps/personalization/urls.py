from django.urls import path

from apps.personalization import views

app_name = "personalization"

urlpatterns = [
    path("", views.slot_list, name="list"),
    path("new/", views.slot_create, name="create"),
    path("demo/", views.demo, name="demo"),
    path("<int:pk>/", views.slot_detail, name="detail"),
    path("<int:pk>/edit/", views.slot_edit, name="edit"),
    path("<int:pk>/delete/", views.slot_delete, name="delete"),
    path("<int:pk>/preview/", views.slot_preview, name="preview"),
    path("<int:pk>/variants/new/", views.variant_create, name="variant_create"),
    path("<int:pk>/variants/<int:variant_pk>/", views.variant_edit, name="variant_edit"),
    path("<int:pk>/variants/<int:variant_pk>/delete/", views.variant_delete, name="variant_delete"),
]
