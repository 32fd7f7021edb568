import factory

from apps.personalization.models import ContentSlot, Variant
from tests.accounts.factories import WorkspaceFactory


class ContentSlotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentSlot

    workspace = factory.SubFactory(WorkspaceFactory)
    key = factory.Sequence(lambda n: f"slot-{n}")
    name = factory.Sequence(lambda n: f"Slot {n}")
    default_content = factory.LazyFunction(lambda: {"html": "<p>Welcome</p>"})


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    slot = factory.SubFactory(ContentSlotFactory)
    name = factory.Sequence(lambda n: f"variant-{n}")
    content = factory.LazyAttribute(lambda v: {"html": f"<p>{v.name}</p>"})
    rule = factory.LazyFunction(dict)
    context_match = factory.LazyFunction(dict)
    priority = 0
