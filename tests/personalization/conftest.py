import pytest

from apps.personalization import services


@pytest.fixture(autouse=True)
def fresh_slots():
    """Each test reads its slots from the database, not from an earlier test's memory."""
    services.forget_slots()
    yield
    services.forget_slots()
