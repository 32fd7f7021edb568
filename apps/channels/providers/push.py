"""Web push: a notification to every browser the contact subscribed in, encrypted for each
browser (aes128gcm) and signed with the workspace's VAPID key, through the browser
vendor's push service. A browser that has gone (404 or 410) is forgotten."""

import json

import requests
from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from apps.channels.choices import ChannelType
from apps.channels.models import PushSubscription
from apps.channels.providers.base import Outgoing, PermanentError, TransientError
from apps.channels.providers.webhook import DEFAULT_TIMEOUT, HttpProvider, service_message
from apps.channels.services import push as push_services

DEFAULT_TTL = 24 * 3600  # how long a push service keeps a notification for an offline browser
GONE = {404, 410}


class WebPushForm(forms.Form):
    subject_email = forms.EmailField(
        label=gettext_lazy("Contact address for push services"),
        help_text=gettext_lazy("Browser vendors write here if this sender causes trouble."),
    )
    ttl = forms.IntegerField(
        label=gettext_lazy("Keep for offline browsers (seconds)"),
        min_value=0,
        max_value=28 * 24 * 3600,
        initial=DEFAULT_TTL,
        required=False,
    )
    timeout = forms.FloatField(
        label=gettext_lazy("Timeout (seconds)"),
        min_value=0.1,
        max_value=120,
        initial=DEFAULT_TIMEOUT,
        required=False,
    )


class WebPush(HttpProvider):
    key = "webpush"
    channel_type = ChannelType.PUSH
    label = gettext_lazy("Web push (VAPID)")
    form_class = WebPushForm
    # The VAPID key pair is made by services.push, never typed in.
    secret_fields = ()

    def recipient(self, contact) -> str | None:
        if not contact.push_subscriptions.exists():
            return None
        return f"contact:{contact.pk}"

    def subject(self) -> str:
        email = self.config.get("subject_email")
        return f"mailto:{email}" if email else ""

    def send(self, outgoing: Outgoing) -> str:
        private_key = self.secrets.get(push_services.PRIVATE_KEY)
        if not private_key or not self.subject():
            raise PermanentError(_("The push channel has no VAPID key or contact address."))
        vapid = Vapid.from_string(private_key)
        subscriptions = list(
            PushSubscription.objects.filter(
                workspace_id=self.channel.workspace_id, contact_id=outgoing.contact_id
            ).order_by("pk")
        )
        if not subscriptions:
            raise PermanentError(_("The contact has no push subscription left."))
        notification = {
            "title": outgoing.subject,
            "body": outgoing.body,
            "message_id": outgoing.message_id,
        }
        url = (outgoing.data.get("context") or {}).get("url")
        if url:
            notification["url"] = url
        data = json.dumps(notification, cls=DjangoJSONEncoder)
        delivered, gone, problems, retry = [], 0, [], False
        for subscription in subscriptions:
            try:
                delivered.append(self._push(subscription, data, vapid))
            except _Gone:
                subscription.delete()
                gone += 1
            except TransientError as error:
                retry = True
                problems.append(error.message)
            except PermanentError as error:
                problems.append(error.message)
        # One browser reached makes the message sent: a retry would notify it twice.
        if delivered:
            return delivered[0]
        if retry:
            raise TransientError("; ".join(problems))
        if gone == len(subscriptions):
            raise PermanentError(_("Every browser of the contact has unsubscribed."))
        raise PermanentError("; ".join(problems))

    def _push(self, subscription: PushSubscription, data: str, vapid) -> str:
        """Answers the push service's id for the notification (its Location)."""
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        ttl = self.config.get("ttl")
        try:
            response = webpush(
                info,
                data,
                vapid_private_key=vapid,
                vapid_claims={"sub": self.subject()},  # a new dict: webpush adds aud and exp
                timeout=self.timeout,
                ttl=DEFAULT_TTL if ttl in (None, "") else int(ttl),
                requests_session=self.session,
            )
        except WebPushException as error:
            response = error.response
            if response is None:
                raise PermanentError(str(error)) from error
            status = response.status_code
            if status in GONE:
                raise _Gone from error
            detail = f"HTTP {status}: {service_message(response)}"
            if status == 429 or status >= 500:
                raise TransientError(detail) from error
            raise PermanentError(detail) from error
        except requests.Timeout as error:
            raise TransientError(
                _("No answer within %(s)s seconds.") % {"s": self.timeout}
            ) from error
        except requests.ConnectionError as error:
            raise TransientError(_("Could not connect: %(e)s") % {"e": error}) from error
        except (requests.RequestException, ValueError) as error:
            # ValueError: the browser's key is not a point on the curve.
            raise PermanentError(str(error)) from error
        return response.headers.get("Location", "")[:255]


class _Gone(Exception):
    """The browser's subscription no longer exists."""
