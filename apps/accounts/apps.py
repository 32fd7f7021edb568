from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from apps.accounts.models import ApiKey, Workspace
        from apps.accounts.services import forget_api_keys

        for model in (ApiKey, Workspace):
            post_save.connect(forget_api_keys, sender=model, dispatch_uid=f"forget-{model}")
            post_delete.connect(forget_api_keys, sender=model, dispatch_uid=f"forget-{model}-d")
