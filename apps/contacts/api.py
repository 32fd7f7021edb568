from django.http import JsonResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.choices import Scope
from apps.contacts.choices import ConsentChannel, ConsentStatus, EventSource
from apps.contacts.filters import ContactFilterSet, EventFilterSet
from apps.contacts.models import Contact, ContactList, Event
from apps.contacts.services import consent as consent_services
from apps.contacts.services import lists as list_services
from apps.contacts.services import privacy, profiles
from apps.contacts.services.events import MAX_BATCH_EVENTS, record_events
from orchestra.api import BodyLimitMixin, PayloadTooLarge, WorkspaceViewSetMixin


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "external_id", "email", "phone", "first_name", "last_name", "timezone",
                  "locale", "attributes", "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]


class ContactWriteSerializer(ContactSerializer):
    """Input is checked by the profiles service (the same rules as bulk and import)."""

    def to_internal_value(self, data):
        _values, errors = profiles.clean_profile(data)
        if errors:
            raise serializers.ValidationError(errors)
        return data


def batch_response(result, item_count: int) -> Response:
    """200 when any item was taken; 400 when every item was rejected."""
    all_rejected = item_count > 0 and len(result.rejected) == item_count
    return Response(result.as_json(), status=400 if all_rejected else 200)


def batch_items(request, key: str, limit: int) -> list:
    data = request.data
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise serializers.ValidationError({key: [_("Send a list under %(key)s.") % {"key": key}]})
    if len(items) > limit:
        raise PayloadTooLarge(
            _("%(count)d items; at most %(limit)d per request.")
            % {"count": len(items), "limit": limit}
        )
    return items


class ContactViewSet(BodyLimitMixin, WorkspaceViewSetMixin, viewsets.ModelViewSet):
    """Contacts of the workspace. `ingest` keys may create and bulk-upsert but not read."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilterSet
    ordering_fields = ["id", "created_at", "updated_at"]
    required_scopes = {"POST": Scope.INGEST}

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return ContactWriteSerializer
        return ContactSerializer

    def create(self, request, *args, **kwargs):
        contact, errors = profiles.create_contact(request.workspace, request.data)
        if errors:
            raise serializers.ValidationError(errors)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        contact = self.get_object()
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object.")]})
        if not kwargs.get("partial"):
            data = {name: data.get(name) for name in profiles.PROFILE_FIELDS} | {
                "attributes": dict.fromkeys(contact.attributes) | (data.get("attributes") or {})
            }
        errors = profiles.update_contact(contact, data)
        if errors:
            raise serializers.ValidationError(errors)
        return Response(ContactSerializer(contact).data)

    @extend_schema(description="Erase the contact: profile, events, consent and list memberships "
                   "are deleted; an erasure record without personal data is kept.")  # fmt: skip
    def destroy(self, request, *args, **kwargs):
        privacy.erase_contact(self.get_object(), via=EventSource.API)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=inline_serializer(
            "ContactBulkRequest", {"contacts": ContactSerializer(many=True)}
        ),
        responses=inline_serializer(
            "ContactBulkResult",
            {
                "created": serializers.IntegerField(),
                "updated": serializers.IntegerField(),
                "unchanged": serializers.IntegerField(),
                "rejected": serializers.ListField(child=serializers.DictField()),
            },
        ),
        examples=[
            OpenApiExample(
                "Two contacts",
                value={"contacts": [{"external_id": "u1", "email": "ann@example.com"},
                                    {"email": "bo@example.com", "attributes": {"plan": "pro"}}]},
                request_only=True,
            )
        ],
    )  # fmt: skip
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Create or update up to 10,000 contacts, matched by external_id, else email."""
        items = batch_items(request, "contacts", profiles.MAX_BULK_CONTACTS)
        return batch_response(profiles.upsert_contacts(request.workspace, items), len(items))

    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """Everything held about this contact (right of access), as a JSON download."""
        contact = self.get_object()
        response = JsonResponse(privacy.export_contact(contact), json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
        return response

    @extend_schema(
        request=inline_serializer(
            "ConsentRequest",
            {
                "channel": serializers.ChoiceField(ConsentChannel.choices),
                "status": serializers.ChoiceField(ConsentStatus.choices),
                "source": serializers.CharField(required=False),
            },
        )
    )
    @action(detail=True, methods=["post"], url_path="consent")
    def set_consent(self, request, pk=None):
        """Record the contact's consent on one channel (the history keeps every change)."""
        contact = self.get_object()
        data = request.data if isinstance(request.data, dict) else {}
        errors = {}
        if data.get("channel") not in ConsentChannel.values:
            errors["channel"] = [_("One of %(c)s.") % {"c": ", ".join(ConsentChannel.values)}]
        if data.get("status") not in ConsentStatus.values:
            errors["status"] = [_("One of %(c)s.") % {"c": ", ".join(ConsentStatus.values)}]
        if errors:
            raise serializers.ValidationError(errors)
        consent, changed = consent_services.set_consent(
            contact, data["channel"], data["status"], str(data.get("source") or "api")[:100]
        )
        return Response({"channel": consent.channel, "status": consent.status, "changed": changed})


class EventViewSet(BodyLimitMixin, WorkspaceViewSetMixin, mixins.ListModelMixin,
                   viewsets.GenericViewSet):  # fmt: skip
    """Track one event or a batch of up to 10,000; list a contact's events."""

    queryset = Event.objects.all()
    filterset_class = EventFilterSet
    required_scopes = {"POST": Scope.INGEST}

    class Output(serializers.ModelSerializer):
        contact = serializers.IntegerField(source="contact_id")

        class Meta:
            model = Event
            fields = ["id", "contact", "name", "properties", "occurred_at", "received_at",
                      "source", "message_id"]  # fmt: skip

    serializer_class = Output

    @extend_schema(
        request=inline_serializer(
            "EventBatch",
            {"events": serializers.ListField(child=serializers.DictField())},
        ),
        responses=inline_serializer(
            "EventBatchResult",
            {
                "accepted": serializers.IntegerField(),
                "rejected": serializers.ListField(child=serializers.DictField()),
            },
        ),
        examples=[
            OpenApiExample(
                "One event",
                value={"external_id": "u1", "name": "purchase",
                       "properties": {"amount": 120, "currency": "DKK"},
                       "message_id": "order-1001"},
                request_only=True,
            ),
            OpenApiExample(
                "A batch",
                value={"events": [{"email": "ann@example.com", "name": "signed_up"},
                                  {"anonymous_id": "a-9f2", "name": "page_viewed",
                                   "properties": {"path": "/pricing"}}]},
                request_only=True,
            ),
        ],
    )  # fmt: skip
    def create(self, request):
        data = request.data
        if isinstance(data, dict) and "events" in data:
            items = batch_items(request, "events", MAX_BATCH_EVENTS)
        else:
            items = [data]
        return batch_response(record_events(request.workspace, items, EventSource.API), len(items))


class ContactListSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactList
        fields = ["id", "name", "slug", "description", "created_at"]
        read_only_fields = ["id", "slug", "created_at"]


class ContactListViewSet(WorkspaceViewSetMixin, viewsets.ModelViewSet):
    """Static lists; add or remove contacts with `members/`."""

    queryset = ContactList.objects.all()
    serializer_class = ContactListSerializer
    filterset_fields = ["slug"]

    def perform_create(self, serializer):
        serializer.instance = list_services.create_list(
            self.request.workspace,
            serializer.validated_data["name"],
            serializer.validated_data.get("description", ""),
        )

    @extend_schema(
        request=inline_serializer(
            "ListMembersRequest",
            {"contacts": serializers.ListField(child=serializers.IntegerField())},
        ),
        responses=inline_serializer("ListMembersResult", {"changed": serializers.IntegerField()}),
    )
    @action(detail=True, methods=["post", "delete"])
    def members(self, request, pk=None):
        """POST adds the contacts (ids) to the list; DELETE removes them."""
        contact_list = self.get_object()
        ids = request.data.get("contacts") if isinstance(request.data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise serializers.ValidationError({"contacts": [_("A list of contact ids.")]})
        if request.method == "POST":
            changed = list_services.add_to_list(contact_list, ids, EventSource.API)
        else:
            changed = list_services.remove_from_list(contact_list, ids)
        return Response({"changed": changed})
