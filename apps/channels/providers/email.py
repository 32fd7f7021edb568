"""Email through Django's email backends: the server's own settings, an SMTP server of the
workspace's, or an ESP through django-anymail.

Over SMTP (Django's SMTP backend, the server's settings or a workspace's server) the message
is written as MIME bytes here and handed to the batch's open SMTP session: Django's
EmailMessage took about 1.3 ms of CPU a message (address parsing, header folding, the email
package's generator), writing the bytes here takes about 55 µs. Every other backend (an ESP
through anymail, the console, a custom backend) gets Django's EmailMultiAlternatives.
"""

import base64
import binascii
import contextlib
import re
import smtplib
import uuid
from email.utils import formatdate, make_msgid, parseaddr

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django import forms
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
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

    connection = None  # the Django email backend, once opened

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

    def sender_parts(self) -> tuple[str, str]:
        """(display name, address) of the sender: the channel's, else the workspace's, else
        the server's DEFAULT_FROM_EMAIL."""
        workspace = self.channel.workspace
        address = (
            self.config.get("from_email")
            or workspace.default_from_email
            or settings.DEFAULT_FROM_EMAIL
        )
        name = self.config.get("from_name") or workspace.default_from_name
        return name or "", address

    def sender(self) -> str:
        name, address = self.sender_parts()
        return f'"{name}" <{address}>' if name else address

    def reply_to(self) -> str:
        return self.config.get("reply_to") or self.channel.workspace.default_reply_to or ""

    def build(self, outgoing: Outgoing) -> EmailMultiAlternatives:
        """Django's message, for the backends that take one (ESPs, the console, ...)."""
        reply_to = self.reply_to()
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
        if self._writes_mime(outgoing):
            return self._send_mime(outgoing)
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

    # Over SMTP: the MIME bytes written here ----------------------------------------------

    def _writes_mime(self, outgoing: Outgoing) -> bool:
        """Django's own SMTP backend (not a subclass: it may sign or change messages), and
        ASCII addresses (Django's address handling covers international ones)."""
        return (
            type(self.connection) is SmtpBackend
            and outgoing.recipient.isascii()
            and self._sender_block()[2]
        )

    def _send_mime(self, outgoing: Outgoing) -> str:
        envelope_from, _block, _ascii = self._sender_block()
        message_id = outgoing.headers.get("Message-ID") or make_msgid(
            domain=settings.MESSAGE_ID_DOMAIN
        )
        data = self.message_bytes(outgoing, message_id)
        try:
            session = self.connection.connection
            if session is None or session.sock is None:  # broken, or closed by the server
                self.close()
                self.open()
            transact(self.connection.connection, envelope_from, outgoing.recipient, data)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _smtp_error(code, reply) from error
        except smtplib.SMTPResponseException as error:
            raise _smtp_error(error.smtp_code, error.smtp_error) from error
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            self.close()
            self.open_quietly()
            raise TransientError(str(error) or error.__class__.__name__) from error
        return message_id

    def message_bytes(self, outgoing: Outgoing, message_id: str | None = None) -> bytes:
        """The message as it goes over SMTP: headers (RFC 2047 where not ASCII), then the
        text part, and the HTML part beside it (multipart/alternative), both UTF-8 in
        quoted-printable, lines ending CRLF."""
        block = self._sender_block()[1]
        message_id = (
            message_id
            or outgoing.headers.get("Message-ID")
            or make_msgid(domain=settings.MESSAGE_ID_DOMAIN)
        )
        lines = [
            block,
            "To: " + _address(outgoing.recipient),
            "Subject: " + encode_header(outgoing.subject, len("Subject: ")),
            "Date: " + formatdate(localtime=settings.EMAIL_USE_LOCALTIME),
            "Message-ID: " + _plain(message_id),
        ]
        for name, value in outgoing.headers.items():
            if name.lower() not in WRITTEN_HEADERS:
                lines.append(f"{_plain(name)}: {encode_header(value, len(name) + 2)}")
        lines.append("MIME-Version: 1.0")
        text = _quoted_printable(outgoing.text)
        if not outgoing.html:
            lines += [TEXT_PART_HEADERS, "", ""]
            return "\r\n".join(lines).encode() + text
        html = _quoted_printable(outgoing.html)
        lines += [f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"', "", ""]
        head = "\r\n".join(lines).encode()
        return b"".join([head, TEXT_PART, text, HTML_PART, html, PARTS_END])

    def _sender_block(self) -> tuple[str, str, bool]:
        """(envelope sender, the From and Reply-To header lines, whether they can be
        written here: plain ASCII addresses): the same for a whole batch, so made once.
        An address setting may carry its own name (`Shop <news@shop.example>`)."""
        cached = getattr(self, "_sender_cache", None)
        if cached is None:
            name, setting = self.sender_parts()
            own_name, address = parseaddr(setting)
            lines = ["From: " + _address(address, name or own_name)]
            reply_name, reply_to = parseaddr(self.reply_to())
            if reply_to:
                lines.append("Reply-To: " + _address(reply_to, reply_name))
            simple = bool(address) and f"{address}{reply_to}".isascii()
            cached = self._sender_cache = (address, "\r\n".join(lines), simple)
        return cached


# Written by message_bytes itself; an Outgoing's own value for these is not repeated.
WRITTEN_HEADERS = {
    *("from", "to", "reply-to", "subject", "date", "message-id"),
    *("mime-version", "content-type", "content-transfer-encoding"),
}
# "==" never occurs in quoted-printable ("=" is always written =3D or ends a line), so the
# boundary cannot appear in a part.
BOUNDARY = f"=={uuid.uuid4().hex}=="
TEXT_PART_HEADERS = (
    'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
)
HTML_PART_HEADERS = TEXT_PART_HEADERS.replace("text/plain", "text/html")
TEXT_PART = f"--{BOUNDARY}\r\n{TEXT_PART_HEADERS}\r\n\r\n".encode()
HTML_PART = f"\r\n--{BOUNDARY}\r\n{HTML_PART_HEADERS}\r\n\r\n".encode()
PARTS_END = f"\r\n--{BOUNDARY}--\r\n".encode()
HEADER_LINE = 78  # what a header line should stay within (RFC 5322)
# Of UTF-8 in one encoded word: 56 characters in base64, 68 with its frame, so that even the
# first, after "Subject: ", stays within HEADER_LINE.
ENCODED_WORD_BYTES = 42


def _quoted_printable(text: str) -> bytes:
    """UTF-8 in quoted-printable with CRLF line ends. binascii writes every line end (its
    soft breaks too) as the first one it meets, so all are made CRLF, and one is added
    for the encoding when the text has none at its end (the CRLF before a boundary
    belongs to the boundary)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    if text.endswith("\r\n"):
        return binascii.b2a_qp(text.encode(), istext=True)
    return binascii.b2a_qp((text + "\r\n").encode(), istext=True)[:-2]


def _plain(value: str) -> str:
    """A header value written as it is: a line break in it would start a header of its own."""
    if "\n" in value or "\r" in value:
        raise PermanentError(_("A header may not contain a line break: %(v)r") % {"v": value})
    return value


def _address(address: str, name: str = "") -> str:
    """An address header's value: `address`, or `name <address>` with the name quoted or,
    when not ASCII, encoded (RFC 2047)."""
    _plain(address)
    if not name:
        return address
    name = " ".join(name.split())
    if not name.isascii():
        return f"{_encoded_words(name)} <{address}>"
    if any(c in name for c in '()<>[]:;@\\,."'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def encode_header(value: str, used: int = 0) -> str:
    """An unstructured header's value (a subject): as it is when ASCII, folded at spaces
    when long; else RFC 2047 encoded words, one folded line each. `used`: the characters
    the header's name takes on its first line."""
    value = " ".join(value.split())  # no line break can start a header of its own
    if not value.isascii() or "=?" in value:
        return _encoded_words(value)
    if used + len(value) <= HEADER_LINE:
        return value
    lines, line = [], ""
    for word in value.split(" "):
        if line and used + len(line) + 1 + len(word) > HEADER_LINE:
            lines.append(line)
            line, used = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if max(map(len, lines)) > 900:  # a word too long for any line: encoded words fold it
        return _encoded_words(value)
    return "\r\n ".join(lines)


def _encoded_words(value: str) -> str:
    """RFC 2047 `=?utf-8?b?…?=` words of at most ENCODED_WORD_BYTES of UTF-8 each, never
    splitting a character; one per line (readers join them without the folding space)."""
    if len(value.encode()) <= ENCODED_WORD_BYTES:
        return f"=?utf-8?b?{base64.b64encode(value.encode()).decode()}?="
    words, chunk, size = [], [], 0
    for char in value:
        length = len(char.encode())
        if size + length > ENCODED_WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += length
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def transact(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """One message to one recipient, as smtplib's sendmail sends it (its exceptions too),
    without parsing the addresses again for each message, and with MAIL, RCPT and DATA
    written at once when the server offers PIPELINING (RFC 2920): two round trips instead
    of four."""
    smtp.ehlo_or_helo_if_needed()
    size = f" SIZE={len(data)}" if smtp.has_extn("size") else ""
    if smtp.has_extn("pipelining"):
        smtp.send(f"MAIL FROM:<{sender}>{size}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
        mail, rcpt, ready = smtp.getreply(), smtp.getreply(), smtp.getreply()
        if ready[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            smtp.send(b".\r\n")  # a server that takes DATA regardless gets an empty one
            smtp.getreply()
    else:
        smtp.putcmd("mail", f"FROM:<{sender}>{size}")
        mail = smtp.getreply()
        rcpt = ready = (0, b"")
        if mail[0] == 250:
            smtp.putcmd("rcpt", f"TO:<{recipient}>")
            rcpt = smtp.getreply()
            if rcpt[0] in (250, 251):
                smtp.putcmd("data")
                ready = smtp.getreply()
    if mail[0] != 250:
        _reset(smtp, mail[0])
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if rcpt[0] not in (250, 251):
        _reset(smtp, rcpt[0])
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
    if ready[0] != 354:
        _reset(smtp, ready[0])
        raise smtplib.SMTPDataError(*ready)
    body = LEADING_DOT_RE.sub(b"..", data)
    smtp.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
    code, reply = smtp.getreply()
    if code != 250:
        _reset(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


LEADING_DOT_RE = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321 4.5.2)


def _reset(smtp: smtplib.SMTP, code: int) -> None:
    if code == 421:  # the server is closing the session
        smtp.close()
    else:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()


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
