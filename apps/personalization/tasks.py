"""Content slots have no background work: impressions and clicks are contact events,
which reporting's rollups count."""
