# The journeys' fixtures (a published journey, subscribed contacts, ingest) for reports on
# journeys the engine ran.
from tests.journeys.conftest import live_journey, subscribed, templates, track  # noqa: F401
