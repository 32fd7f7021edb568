from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.workspace_settings, name="workspace_settings"),
    path("members/", views.member_list, name="member_list"),
    path("members/<int:pk>/role/", views.member_role, name="member_role"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("api-keys/", views.api_key_list, name="api_key_list"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("workspaces/<slug:slug>/switch/", views.switch_workspace, name="switch_workspace"),
]
