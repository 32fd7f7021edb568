from django.urls import path

from apps.journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.journey_list, name="list"),
    path("new/", views.journey_new, name="new"),
    path("<int:pk>/", views.journey_builder, name="builder"),
    path("<int:pk>/node/", views.node_form, name="node_form"),
    path("<int:pk>/settings/", views.settings_form, name="settings_form"),
    path("<int:pk>/test/", views.test_panel, name="test"),
    path("<int:pk>/forecast/", views.forecast, name="forecast"),
    path("<int:pk>/versions/", views.version_list, name="versions"),
    path("<int:pk>/versions/<int:number>/", views.version_builder, name="version"),
    path("<int:pk>/versions/<int:number>/restore/", views.version_restore, name="restore"),
    path("<int:pk>/steps/", views.steps_editor, name="steps"),
]
