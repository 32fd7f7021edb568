"""The contacts domain: profiles, events, identity, consent, lists, privacy, imports.

Import from the submodule that names the operation, e.g.
`from apps.contacts.services.events import record_events`.
"""
