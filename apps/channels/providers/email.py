"""Email through Django's email backends: the server's own settings, an SMTP server of the
workspace's, or an ESP through django-anymail."""

import contextlib
import smtplib

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django import forms
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.translation import gettext_lazy as _

from apps.channels.choices import ChannelType
from apps.channels.providers.base import Outgoing, PermanentError, Provider, TransientError

ANYMAIL_ESPS = {
    "amazon_ses": "Amazon SES",
    "brevo": "Brevo",
    "mailgun": "Mailgun",
    "mailjet": "Mailjet",
    "postmark": "Postmark",
    "resend": "Resend",
    "sendgrid": "SendGrid",
    "sparkpost": "SparkPost",
}


class SenderForm(forms.Form):
    from_email = forms.EmailField(
        label=_("Sender address"),
        required=False,
        help_text=_("Empty: the workspace's default sender, else the server's."),
    )
    from_name = forms.CharField(label=_("Sender name"), max_length=100, required=False)
    reply_to = forms.EmailField(label=_("Reply-to address"), required=False)


class EmailProvider(Provider):
    """Shared by the email providers: addressing, the MIME message and error mapping."""

    channel_type = ChannelType.EMAIL
    form_class = SenderForm

    def connection_kwargs(self) -> dict:
        raise NotImplementedError

    def open(self) -> None:
        self.connection = get_connection(fail_silently=False, **self.connection_kwargs())
        try:
            self.connection.open()
        except (OSError, smtplib.SMTPException) as error:
            raise TransientError(_("Could not connect: %(e)s") % {"e": error}) from error

    def close(self) -> None:
        # Closing a broken connection must not fail the batch.
        with contextlib.suppress(Exception):
            self.connection.close()

    def recipient(self, contact) -> str | None:
        return contact.email or None

    def sender(self) -> str:
        workspace = self.channel.workspace
        address = (
            self.config.get("from_email")
            or workspace.default_from_email
            or settings.DEFAULT_FROM_EMAIL
        )
        name = self.config.get("from_name") or workspace.default_from_name
        return f'"{name}" <{address}>' if name else address

    def build(self, outgoing: Outgoing) -> EmailMultiAlternatives:
        reply_to = self.config.get("reply_to") or self.channel.workspace.default_reply_to
        email = EmailMultiAlternatives(
            subject=outgoing.subject,
            body=outgoing.text,
            from_email=self.sender(),
            to=[outgoing.recipient],
            reply_to=[reply_to] if reply_to else None,
            headers=outgoing.headers,
            connection=self.connection,
        )
        if outgoing.html:
            email.attach_alternative(outgoing.html, "text/html")
        return email

    def send(self, outgoing: Outgoing) -> str:
        email = self.build(outgoing)
        try:
            email.send()
        except AnymailRecipientsRefused as error:
            raise PermanentError(str(error)) from error
        except AnymailAPIError as error:
            status = getattr(error, "status_code", None)
            if status is not None and 400 <= status < 500 and status != 429:
                raise PermanentError(str(error)) from error
            raise TransientError(str(error)) from error
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _smtp_error(code, reply) from error
        except smtplib.SMTPResponseException as error:
            raise _smtp_error(error.smtp_code, error.smtp_error) from error
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # The connection broke; the next try opens a new one.
            self.close()
            self.open_quietly()
            raise TransientError(str(error) or error.__class__.__name__) from error
        return _provider_id(email)

    def open_quietly(self) -> None:
        with contextlib.suppress(TransientError):
            self.open()


def _smtp_error(code: int, reply) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    detail = f"{code} {text}"
    return PermanentError(detail) if 500 <= code < 600 else TransientError(detail)


def _provider_id(email) -> str:
    """The ESP's id where anymail reports one; our own Message-ID for SMTP."""
    status = getattr(email, "anymail_status", None)
    if status is not None and status.message_id:
        return str(status.message_id)
    return email.extra_headers.get("Message-ID", "")


class ServerEmail(EmailProvider):
    """The server's email settings (EMAIL_HOST and the rest): a new workspace's channel."""

    key = "server"
    label = _("This server's email settings")

    def connection_kwargs(self) -> dict:
        return {}


class SmtpForm(SenderForm):
    host = forms.CharField(label=_("SMTP host"), max_length=255)
    port = forms.IntegerField(label=_("Port"), min_value=1, max_value=65535, initial=587)
    username = forms.CharField(label=_("User name"), max_length=255, required=False)
    password = forms.CharField(
        label=_("Password"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    use_tls = forms.BooleanField(label=_("STARTTLS"), required=False, initial=True)
    use_ssl = forms.BooleanField(label=_("TLS from the start (port 465)"), required=False)
    timeout = forms.IntegerField(label=_("Timeout (seconds)"), min_value=1, initial=20)

    def clean(self):
        data = super().clean()
        if data.get("use_tls") and data.get("use_ssl"):
            raise forms.ValidationError(_("Choose STARTTLS or TLS from the start, not both."))
        return data


class SmtpEmail(EmailProvider):
    key = "smtp"
    label = _("SMTP server")
    form_class = SmtpForm
    secret_fields = ("password",)

    def connection_kwargs(self) -> dict:
        return {
            "backend": "django.core.mail.backends.smtp.EmailBackend",
            "host": self.config.get("host"),
            "port": self.config.get("port"),
            "username": self.config.get("username") or "",
            "password": self.secrets.get("password") or "",
            "use_tls": bool(self.config.get("use_tls")),
            "use_ssl": bool(self.config.get("use_ssl")),
            "timeout": self.config.get("timeout") or 20,
        }


class AnymailForm(SenderForm):
    esp = forms.ChoiceField(label=_("Email service"), choices=sorted(ANYMAIL_ESPS.items()))
    api_key = forms.CharField(
        label=_("API key"), required=False, widget=forms.PasswordInput(render_value=False)
    )


class AnymailEmail(EmailProvider):
    """An email service's HTTP API through django-anymail; its tracking webhooks report
    deliveries, bounces, complaints, opens and clicks back (apps.channels.tracking)."""

    key = "anymail"
    label = _("Email service (Mailgun, Postmark, SendGrid, …)")
    form_class = AnymailForm
    secret_fields = ("api_key",)

    def connection_kwargs(self) -> dict:
        # ("test" is anymail's own recording backend, which the tests use.)
        backend = f"anymail.backends.{self.config.get('esp')}.EmailBackend"
        return {"backend": backend, "api_key": self.secrets.get("api_key") or None}

    def open(self) -> None:
        try:
            super().open()
        except Exception as error:  # anymail reports missing settings on creation
            raise PermanentError(str(error)) from error
