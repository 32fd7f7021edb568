from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "apps.channels"
    verbose_name = _("Channels")

    def ready(self):
        from anymail.signals import tracking

        from apps.channels import esp

        # ESPs' delivery, bounce, complaint, open and click reports (apps/channels/esp.py).
        tracking.connect(esp.on_tracking_event, dispatch_uid="orchestra.channels.esp")
