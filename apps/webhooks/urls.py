from django.urls import path

from apps.webhooks import views

app_name = "webhooks"

# Settings → Webhooks (/settings/webhooks/).
urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("new/", views.subscription_create, name="create"),
    path("<int:pk>/", views.subscription_detail, name="detail"),
    path("<int:pk>/rotate-secret/", views.subscription_rotate_secret, name="rotate_secret"),
    path("<int:pk>/test/", views.subscription_test, name="test"),
    path("<int:pk>/delete/", views.subscription_delete, name="delete"),
    path("<int:pk>/deliveries/<int:delivery_pk>/", views.delivery_detail, name="delivery"),
    path("<int:pk>/deliveries/<int:delivery_pk>/replay/", views.delivery_replay, name="replay"),
]
