"""Templates in Liquid: checking them on save (with the line of each problem), and turning a
template version into a message for one contact: personalised, CSS inlined for mail
clients, links tracked, an unsubscribe link always present.

Liquid runs in its own sandbox: a template sees only the plain data given to it (no Python
objects, no attribute access beyond dicts and lists, no file or network access).
"""

import hashlib
import hmac
import html as html_lib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser

import css_inline
import mjml
from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes
from django.utils.translation import gettext as _
from liquid import Environment
from liquid.exceptions import LiquidError

from apps.channels.choices import ChannelType

# What a template may name; attributes and event properties may hold anything.
CONTACT_FIELDS = {"id", "external_id", "email", "phone", "first_name", "last_name", "name",
                  "timezone", "locale", "attributes", "segments", "created_at"}  # fmt: skip
EVENT_FIELDS = {"name", "properties", "occurred_at"}
WORKSPACE_FIELDS = {"name"}
SCOPE_ROOTS = {"contact", "event", "workspace", "unsubscribe_url"}

SIGNING_SALTS = {"open": "orchestra.track.open", "click": "orchestra.track.click",
                 "unsubscribe": "orchestra.track.unsubscribe"}  # fmt: skip
LINK_RE = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
UNSUBSCRIBE_PLACEHOLDER = "{{ unsubscribe_url }}"
BODY_RE = re.compile(r"<body\b[^>]*>", re.IGNORECASE)

liquid = Environment(autoescape=False)
liquid_html = Environment(autoescape=True)  # contact data is escaped inside HTML
inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


# Checking on save ------------------------------------------------------------------------


def template_problems(channel: str, content: dict) -> dict[str, list[str]]:
    """{field: ["Line 3: …", …]} for every syntax error and unknown variable."""
    problems: dict[str, list[str]] = {}
    fields = ("subject", "preheader", "html", "text") if channel == ChannelType.EMAIL else ("body",)
    for name in fields:
        source = content.get(name) or ""
        found = _source_problems(source, html=name == "html")
        if found:
            problems[name] = found
    if channel == ChannelType.EMAIL:
        if not (content.get("subject") or "").strip():
            problems.setdefault("subject", []).append(_("An email needs a subject."))
        if not (content.get("html") or "").strip() and not (content.get("text") or "").strip():
            problems.setdefault("html", []).append(_("Write the HTML or the text part."))
    elif not (content.get("body") or "").strip():
        problems.setdefault("body", []).append(_("Write the message."))
    return problems


def _source_problems(source: str, html: bool) -> list[str]:
    if html and _is_mjml(source):
        try:
            source = mjml.mjml2html(source)
        except Exception as error:
            return [_("MJML: %(error)s") % {"error": error}]
    try:
        template = liquid.from_string(source)
    except LiquidError as error:
        return [_line_message(source, getattr(error.token, "start_index", -1), error.message)]
    problems = []
    analysis = template.analyze()
    for spans in analysis.globals.values():
        for variable in spans:
            problem = _unknown_variable(variable.segments)
            if problem:
                problems.append(_line_message(source, variable.span.index, problem))
    for name, spans in analysis.filters.items():
        if name not in liquid.filters:
            message = _("unknown filter '%(name)s'") % {"name": name}
            problems += [_line_message(source, span.index, message) for span in spans]
    return problems


def _unknown_variable(segments: list) -> str | None:
    root = segments[0] if segments else ""
    name = ".".join(str(segment) for segment in segments)
    if root not in SCOPE_ROOTS:
        return _("unknown variable %(name)s") % {"name": name}
    known = {"contact": CONTACT_FIELDS, "event": EVENT_FIELDS, "workspace": WORKSPACE_FIELDS}
    if root in known and len(segments) > 1 and segments[1] not in known[root]:
        return _("unknown variable %(name)s (%(root)s has %(fields)s)") % {
            "name": name,
            "root": root,
            "fields": ", ".join(sorted(known[root])),
        }
    return None


def _line_message(source: str, index: int, message: str) -> str:
    line = source.count("\n", 0, index) + 1 if index >= 0 else source.count("\n") + 1
    return _("Line %(line)d: %(message)s") % {"line": line, "message": message}


def _is_mjml(source: str) -> bool:
    return source.lstrip()[:5].lower() == "<mjml"


# Rendering -------------------------------------------------------------------------------


@dataclass
class Rendered:
    subject: str = ""
    html: str = ""
    text: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)


@lru_cache(maxsize=512)
def _compiled(version_id: int, name: str, source: str, html: bool):
    """Each version's fields are parsed once per process (MJML compiled first)."""
    if html and _is_mjml(source):
        source = mjml.mjml2html(source)
    return (liquid_html if html else liquid).from_string(source)


def render_fields(version, scope: dict) -> dict[str, str]:
    """Liquid applied to each field of the version, nothing else (previews, SMS, push)."""
    rendered = {}
    # An unsaved draft (the editor's preview, a test send) has no id: compiled without the
    # cache, so drafts never fill it nor meet each other's entries under a shared key.
    compile_field = _compiled if version.pk is not None else _compiled.__wrapped__
    for name, value in version.content().items():
        if value:
            rendered[name] = compile_field(version.pk, name, value, name == "html").render(**scope)
        else:
            rendered[name] = ""
    return rendered


def render_message(version, scope: dict, message_id: int | None, channel: str) -> Rendered:
    """The message as it goes out. `scope` is what message_scope() built for the contact;
    with message_id None (a preview, a test send) links are left untracked."""
    unsubscribe_url = tracking_url("unsubscribe", message_id) if message_id else "#unsubscribe"
    scope = {**scope, "unsubscribe_url": unsubscribe_url}
    fields = render_fields(version, scope)
    if channel != ChannelType.EMAIL:
        return Rendered(subject=fields["subject"], body=fields["body"].strip())
    subject = " ".join(fields["subject"].split())
    html, links = "", []
    if fields["html"]:
        html = _finish_html(fields["html"], fields["preheader"], unsubscribe_url)
        if message_id:
            html, links = _track_links(html, message_id, unsubscribe_url)
            html = _add_open_pixel(html, message_id)
    written = fields["text"].strip()
    text = written or html_to_text(html)
    # Text derived from the HTML has its unsubscribe link already (a preview's placeholder
    # link is not a URL, so it shows as the word only).
    if unsubscribe_url not in text and (written or not html):
        text += "\n\n" + _("Unsubscribe: %(url)s") % {"url": unsubscribe_url}
    headers = {}
    if message_id:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Message-ID": f"<message-{message_id}@{settings.MESSAGE_ID_DOMAIN}>",
        }
    return Rendered(subject=subject, html=html, text=text, headers=headers, links=links)


def _finish_html(html: str, preheader: str, unsubscribe_url: str) -> str:
    if unsubscribe_url not in html:
        footer = (
            '<p style="font-size:12px;color:#666;text-align:center;margin:24px 0">'
            f'<a href="{html_lib.escape(unsubscribe_url)}" style="color:#666">'
            f"{html_lib.escape(_('Unsubscribe'))}</a></p>"
        )
        html = _before_body_end(html, footer)
    if preheader.strip():
        hidden = (
            '<div style="display:none;max-height:0;overflow:hidden;opacity:0">'
            f"{html_lib.escape(' '.join(preheader.split()))}</div>"
        )
        match = BODY_RE.search(html)
        html = html[: match.end()] + hidden + html[match.end() :] if match else hidden + html
    return inliner.inline(html)


def _before_body_end(html: str, snippet: str) -> str:
    index = html.lower().rfind("</body>")
    return html[:index] + snippet + html[index:] if index >= 0 else html + snippet


def _track_links(html: str, message_id: int, unsubscribe_url: str) -> tuple[str, list[str]]:
    """Each http(s) link goes through the click redirect; the message keeps the list, and
    the redirect follows only links from it (no open redirect)."""
    links: list[str] = []

    def replace(match):
        url = html_lib.unescape(match.group(3))
        if url == unsubscribe_url:
            return match.group(0)
        if url not in links:
            links.append(url)
        tracked = tracking_url("click", message_id, links.index(url))
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

    return LINK_RE.sub(replace, html), links


def _add_open_pixel(html: str, message_id: int) -> str:
    pixel = (
        f'<img src="{tracking_url("open", message_id)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    return _before_body_end(html, pixel)


def tracking_url(kind: str, message_id: int, link: int | None = None) -> str:
    """Signed as signing.Signer.sign_object([message_id(, link)]) signs, which is what
    read_tracking_token checks; a message carries several, so the key is derived once."""
    data = f"[{int(message_id)}]" if link is None else f"[{int(message_id)},{int(link)}]"
    value = signing.b64_encode(data.encode()).decode()
    token = f"{value}:{_signer(kind, settings.SECRET_KEY).signature(value)}"
    before, after = _tracking_path(kind, get_script_prefix(), get_urlconf())
    return f"{settings.SITE_URL}{before}{token}{after}"


class _TrackingSigner(signing.Signer):
    """Django's Signer, with its HMAC key (derived from salt and secret key, as
    django.utils.crypto.salted_hmac derives it) computed once instead of per token."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        derived = hashlib.sha256(force_bytes(self.salt + "signer") + force_bytes(self.key))
        self._mac = hmac.new(derived.digest(), digestmod=hashlib.sha256)

    def signature(self, value, key=None):
        if key is not None and key != self.key:
            return super().signature(value, key)
        mac = self._mac.copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=16)
def _signer(kind: str, secret_key: str) -> signing.Signer:
    return _TrackingSigner(key=secret_key, salt=SIGNING_SALTS[kind])


PATH_MARK = "path0mark"


@lru_cache(maxsize=16)
def _tracking_path(kind: str, script_prefix: str, urlconf) -> tuple[str, str]:
    """The tracking URL's path around its token, reversed once: a signed token holds only
    characters that reverse() leaves as they are (URL-safe base64 and ':')."""
    path = reverse(f"tracking:{kind}", args=[PATH_MARK])
    before, _mark, after = path.partition(PATH_MARK)
    return before, after


def read_tracking_token(kind: str, token: str) -> list | None:
    try:
        return signing.Signer(salt=SIGNING_SALTS[kind]).unsign_object(token)
    except signing.BadSignature:
        return None


# Text from HTML --------------------------------------------------------------------------


WHITESPACE_RE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    BLOCKS = {"p", "div", "br", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "table",
              "section", "article", "header", "footer", "blockquote", "hr"}  # fmt: skip
    SKIPPED = {"style", "script", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.hidden: list = []  # [tag, depth] while inside an element hidden by its style
        self.href_stack: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.SKIPPED:
            self.skipping += 1
        if self.hidden and tag == self.hidden[0]:
            self.hidden[1] += 1
        elif not self.hidden and "display:none" in (attrs.get("style") or "").replace(" ", ""):
            self.hidden = [tag, 1]
        if tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href_stack.append(attrs.get("href"))

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self.skipping:
            self.skipping -= 1
        if self.hidden and tag == self.hidden[0]:
            self.hidden[1] -= 1
            if not self.hidden[1]:
                self.hidden = []
        if tag == "a" and self.href_stack:
            href = self.href_stack.pop()
            if href and href.startswith(("http://", "https://")):
                self.parts.append(f" ({href})")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in ("br", "hr"):
            self.parts.append("\n")

    def handle_data(self, data):
        # Runs of white space become one space, kept at the ends: "Hi <b>Ann</b>" reads
        # "Hi Ann", not "HiAnn". Lines are trimmed at the end.
        if not self.skipping and not self.hidden:
            self.parts.append(WHITESPACE_RE.sub(" ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text part from the HTML: paragraphs kept, links shown as URLs."""
    if not html:
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    lines = [" ".join(line.split()) for line in "".join(extractor.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
