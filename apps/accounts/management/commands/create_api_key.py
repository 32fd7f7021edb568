from django.core.management.base import BaseCommand, CommandError

from apps.accounts import services
from apps.accounts.models import Workspace


class Command(BaseCommand):
    help = "Create an API key for a workspace and print just the key (it is not shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug, e.g. demo")
        parser.add_argument(
            "--scopes", default="ingest,read,write", help="Comma-separated: ingest,read,write"
        )
        parser.add_argument("--name", default="Created on the command line")

    def handle(self, *args, workspace: str, scopes: str, name: str, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace with the slug {workspace!r}.")
        try:
            _api_key, raw_key = services.create_api_key(
                found, name, [s.strip() for s in scopes.split(",") if s.strip()]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(raw_key)
