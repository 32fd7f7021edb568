import factory
from django.utils import timezone

from apps.contacts.models import Contact, ContactList, Event
from tests.accounts.factories import WorkspaceFactory


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    workspace = factory.SubFactory(WorkspaceFactory)
    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.Sequence(lambda n: f"contact{n}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    timezone = "Europe/Copenhagen"


class ContactListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactList

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"List {n}")
    slug = factory.Sequence(lambda n: f"list-{n}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    contact = factory.SubFactory(ContactFactory)
    workspace = factory.SelfAttribute("contact.workspace")
    name = "page_viewed"
    properties = factory.LazyFunction(dict)
    occurred_at = factory.LazyFunction(timezone.now)
