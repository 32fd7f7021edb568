from django.urls import path

from apps.reporting import views, views_insight

app_name = "reporting"

urlpatterns = [
    path("", views.reports_index, name="index"),
    path("export/<str:chart>.csv", views.dashboard_export, name="export"),
    path("attribution/", views.attribution, name="attribution"),
    path("attribution.csv", views.attribution_export, name="attribution_export"),
    path("journeys/", views.journey_reports, name="journeys"),
    path("journeys/<int:pk>/", views.journey_report, name="journey"),
    path(
        "journeys/<int:pk>/export/<str:chart>.csv",
        views.journey_report_export,
        name="journey_export",
    ),
    path("insight/", views_insight.insight_page, name="insight"),
    path("insight/status/", views_insight.insight_status, name="insight_status"),
    path("insight/recompute/", views_insight.insight_recompute, name="insight_recompute"),
    path("insight/export/<str:chart>.csv", views_insight.insight_export, name="insight_export"),
    path(
        "insight/rfm/<str:selection>/",
        views_insight.insight_rfm_customers,
        name="insight_rfm_customers",
    ),
    path(
        "insight/rfm/<str:selection>/save/",
        views_insight.insight_save_segment,
        name="insight_save_segment",
    ),
]
