from celery import shared_task
from django.db import OperationalError, transaction

from apps.contacts.services import imports


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def run_contact_import_task(import_id: int) -> None:
    """Import the next chunks of a CSV import, and queue the rest as a new task."""
    if imports.run_import(import_id):
        transaction.on_commit(lambda: run_contact_import_task.delay(import_id))
