"""Names shared by the decision API, the script and reporting."""

# Contact events recorded by content slots (reporting's EventDaily counts them per day).
SLOT_IMPRESSION = "slot_impression"
SLOT_CLICKED = "slot_clicked"
# The variant name answered when no variant matched.
DEFAULT_VARIANT = "default"
# Context keys a site may send with a decision request, matched by a variant's globs.
CONTEXT_KEYS = ("page", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content",
                "utm_term", "language")  # fmt: skip
