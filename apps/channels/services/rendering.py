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
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser

import css_inline
import mjml
from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.encoding import force_bytes
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from liquid import Environment
from liquid.exceptions import LiquidError
from liquid.stringify import to_liquid_string
from markupsafe import Markup

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
# The text part derived from a version's HTML once (see _email_layout): what Liquid writes
# into it is what the HTML would hold, read as text (entities decoded, and in text runs of
# white space made one space, as html_to_text reads them). An escaping environment, so that
# Liquid's own string literals are told from data as in HTML; its filters answer Markup only
# so that the decoded text is not escaped again: the text part is never put into HTML.
liquid_text = Environment(autoescape=True)


def _as_text(value) -> Markup:
    return Markup(WHITESPACE_RE.sub(" ", _as_href(value)))  # noqa: S704 (plain text)


def _as_href(value) -> Markup:
    return Markup(html_lib.unescape(to_liquid_string(value, True)))  # noqa: S704 (plain text)


liquid_text.add_filter("orchestra_as_text", _as_text)
liquid_text.add_filter("orchestra_as_href", _as_href)
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


def render_fields(version, scope: dict, names: tuple[str, ...] = ()) -> dict[str, str]:
    """Liquid applied to each field of the version (or to those named), nothing else
    (previews, SMS, push)."""
    rendered = {}
    # An unsaved draft (the editor's preview, a test send) has no id: compiled without the
    # cache, so drafts never fill it nor meet each other's entries under a shared key.
    compile_field = _compiled if version.pk is not None else _compiled.__wrapped__
    content = version.content()
    for name in names or content:
        value = content[name]
        if value:
            rendered[name] = compile_field(version.pk, name, value, name == "html").render(**scope)
        else:
            rendered[name] = ""
    return rendered


def render_message(version, scope: dict, message_id: int | None, channel: str) -> Rendered:
    """The message as it goes out. `scope` is what message_scope() built for the contact;
    with message_id None (a preview, a test send) links are left untracked."""
    track = _Tracker() if message_id else None
    unsubscribe_url = track("unsubscribe", message_id) if track else "#unsubscribe"
    scope = {**scope, "unsubscribe_url": unsubscribe_url}
    if channel != ChannelType.EMAIL:
        fields = render_fields(version, scope)
        return Rendered(subject=fields["subject"], body=fields["body"].strip())
    fields = render_fields(version, scope, ("subject", "preheader", "text"))
    subject = " ".join(fields["subject"].split())
    html, links, tracked, text_layout = "", [], [], None
    if version.html:
        html, text_layout = _render_html(version, scope, fields["preheader"], unsubscribe_url)
        if track and html:
            html, links, tracked = _track_links(html, message_id, unsubscribe_url, track)
            html = _add_open_pixel(html, message_id, track)
    written = fields["text"].strip()
    if written:
        text = written
    elif text_layout is not None:
        text = _layout_text(text_layout, scope, links, tracked)
    else:
        text = html_to_text(html)
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


def _render_html(version, scope: dict, preheader: str, unsubscribe_url: str):
    """(the HTML as it goes out, untracked; the version's text part layout or None, for a
    text part derived from this HTML)."""
    build = _email_layout if version.pk is not None else _email_layout.__wrapped__
    layout = build(version.pk, version.html, bool(version.preheader), get_language())
    if layout is not None:
        html = layout.html.render(**scope, **{PREHEADER_VARIABLE: " ".join(preheader.split())})
        if layout.footer or unsubscribe_url in html:
            return html, layout.text
    # No layout, or the template's own unsubscribe link left out for this contact (then the
    # footer is added to this message alone).
    rendered = render_fields(version, scope, ("html",))["html"]
    if not rendered:
        return "", None
    return _finish_html(rendered, preheader, unsubscribe_url), None


# Each version's HTML prepared once ---------------------------------------------------------
#
# An email's HTML goes through the same steps for every contact: MJML compiled, the hidden
# preheader and the unsubscribe footer added, the CSS inlined and the text part derived.
# Done for each message, inlining and above all deriving the text (html.parser) cost more
# than the rest of rendering together. So a version's HTML is prepared once per process
# with its Liquid still in it: each Liquid tag stands in as a placeholder that the HTML
# parser leaves where it is (a comment between elements, a word inside an attribute value),
# the CSS is inlined, the Liquid put back and the result compiled; the text part is derived
# from the same document. Per message, only Liquid runs.
#
# That is the email that inlining each rendered message gives only when Liquid cannot change
# which elements a CSS rule applies to, so a version is prepared this way only when:
# - Liquid is in text, in comments, or in attribute values other than class, id and style;
#   never inside <style>, <script>, <title> or <textarea>, nor in a tag outside a value;
# - what a block ({% if %}, {% for %}, ...) holds is whole elements (each tag it opens, it
#   closes), so an element's ancestors are the same for every contact;
# - no style sheet selector depends on siblings, position or attributes (+, ~,
#   :first-child, :nth-…, [attr]): blocks add, drop and repeat elements;
# - nothing writes markup ({{ x | safe }}, newline_to_br, capture) and there is no raw block;
# - the HTML parses as written (no tag left open or closed out of turn; tbody and the
#   document's html, head and body may be implied, but not inside a block).
# Otherwise each message is inlined, and its text derived, as before (_finish_html).

PREHEADER_VARIABLE = "orchestra_preheader"
PREHEADER_SLOT = (  # what _finish_html adds for a preheader, as Liquid
    f'{{% if {PREHEADER_VARIABLE} != "" %}}'
    '<div style="display:none;max-height:0;overflow:hidden;opacity:0">'
    f"{{{{ {PREHEADER_VARIABLE} }}}}</div>{{% endif %}}"
)
LIQUID_RE = re.compile(
    r"\{%-?\s*(?:comment|raw)\s*-?%\}.*?\{%-?\s*end(?:comment|raw)\s*-?%\}"
    r"|\{\{.*?\}\}|\{%.*?%\}",
    re.DOTALL,
)
LIQUID_TAG_RE = re.compile(r"\{%-?\s*(\w+)")
# What each Liquid tag is here: a block's start, branch or end, a tag that writes nothing or
# one that writes text. Any other (raw, capture, echo, liquid, include, ...) rules a version
# out (capture and echo may write markup).
TAG_KINDS = {
    **dict.fromkeys(("if", "unless", "case", "for", "tablerow", "ifchanged"), "open"),
    **dict.fromkeys(("elsif", "else", "when"), "branch"),
    **dict.fromkeys(
        ("endif", "endunless", "endcase", "endfor", "endtablerow", "endifchanged"), "close"
    ),
    **dict.fromkeys(("assign", "break", "continue", "comment"), "quiet"),
    **dict.fromkeys(("cycle", "increment", "decrement"), "writing"),
}
MARKUP_FILTER_RE = re.compile(r"\|\s*(?:safe|newline_to_br)\b")
# The pieces of an HTML document that are not text, in the order a parser meets them.
HTML_PIECE_RE = re.compile(
    r"(?P<comment><!--.*?(?:-->|\Z))"
    r"|(?P<raw><(?P<rawname>script|style|title|textarea|xmp|iframe|noembed|noframes|noscript"
    r"|plaintext)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>.*?(?:</(?P=rawname)\s*>|\Z))"
    r"|(?P<tag></?(?P<name>[a-zA-Z][^\s/>\x00]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>)"
    r"|(?P<other><![^>]*>|<\?[^>]*>)",
    re.IGNORECASE | re.DOTALL,
)
ATTRIBUTE_RE = re.compile(r"""([^\s"'>/=]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
MARK_RE = re.compile("\x00(\\d+)\x00")
VOID_ELEMENTS = {
    *("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"),
    *("source", "track", "wbr", "basefont", "bgsound", "frame", "keygen"),
}
IMPLIED_ELEMENTS = {"html", "head", "body", "tbody"}
DOCUMENT_TAG_RE = re.compile(r"<(?:html|head|body|title|meta|base)\b", re.IGNORECASE)
RISKY_SELECTOR_RE = re.compile(r"[\[+~]|(?<!:):(?!:|hover\b|active\b|focus\b|visited\b|link\b)")
HREF_MARK_RE = re.compile("\x01 \\((.*?)\\)\x02", re.DOTALL)


@dataclass(frozen=True)
class _Layout:
    html: object  # the compiled Liquid of the finished HTML (preheader, footer, CSS inlined)
    text: object | None  # the text part's Liquid, or None: derived from each message's HTML
    footer: bool  # whether the unsubscribe footer is in it (else the template has the link)


@dataclass
class _Token:
    text: str  # the Liquid, as written
    kind: str  # output, open, branch, close, quiet, writing, other
    context: tuple = ()  # ("text",), ("comment", piece), ("attribute", piece, name); () = none


@lru_cache(maxsize=256)
def _email_layout(version_id, source: str, preheader: bool, language) -> _Layout | None:
    """The version's HTML prepared once per process and language (the footer's word is
    translated), or None when it cannot be (see above)."""
    if _is_mjml(source):
        source = mjml.mjml2html(source)
    if not DOCUMENT_TAG_RE.search(source):
        # A fragment: the parser would put it in a body it makes, and a placeholder before
        # its first element outside that body.
        source = f"<body>{source}</body>"
    footer = "unsubscribe_url" not in source
    if footer:
        source = _before_body_end(source, _footer("{{ unsubscribe_url }}"))
    if preheader:
        source = _after_body_start(source, PREHEADER_SLOT)
    tokens = [_liquid_token(match.group(0)) for match in LIQUID_RE.finditer(source)]
    marked = LIQUID_RE.sub(_Counter("\x00{}\x00"), source)
    if not _placed(marked, tokens) or not _wraps_whole_elements(marked, tokens):
        return None
    if tokens and any(RISKY_SELECTOR_RE.search(selector) for selector in _selectors(marked)):
        return None
    prefix = "lq" + uuid.uuid4().hex[:12]
    stand_ins = {}
    for index, token in enumerate(tokens):
        word = f"{prefix}{index}z"
        stand_ins[index] = f"<!--{word}-->" if token.context == ("text",) else word
    placeholder_html = MARK_RE.sub(lambda m: stand_ins[int(m.group(1))], marked)
    try:
        inlined = inliner.inline(placeholder_html)
    except Exception:  # whatever it is, each message is inlined (and reports it) as before
        return None
    words = re.compile(f"{prefix}(\\d+)z")
    if [int(n) for n in words.findall(inlined)] != list(range(len(tokens))):
        return None  # a placeholder moved, vanished or came twice
    if _tag_sequence(inlined) != _tag_sequence(placeholder_html):
        return None  # the parser changed the document
    marked_after = re.sub(
        f"<!--{prefix}(\\d+)z-->|{prefix}(\\d+)z",
        lambda m: f"\x00{m.group(1) or m.group(2)}\x00",
        inlined,
    )
    if not _wraps_whole_elements(marked_after, tokens):
        return None  # an element the parser implied (a tbody) opens inside a block
    restored = re.sub(
        f"<!--{prefix}(\\d+)z-->|{prefix}(\\d+)z",
        lambda m: tokens[int(m.group(1) or m.group(2))].text,
        inlined,
    )
    try:
        html = liquid_html.from_string(restored)
    except LiquidError:
        return None
    return _Layout(html=html, text=_text_layout(inlined, tokens, stand_ins, words), footer=footer)


class _Counter:
    """A re.sub replacement numbering its matches."""

    def __init__(self, pattern: str):
        self.pattern, self.count = pattern, 0

    def __call__(self, _match) -> str:
        self.count += 1
        return self.pattern.format(self.count - 1)


def _liquid_token(text: str) -> _Token:
    if text.startswith("{{"):
        kind = "other" if MARKUP_FILTER_RE.search(text) else "output"
        return _Token(text, kind)
    match = LIQUID_TAG_RE.match(text)
    return _Token(text, TAG_KINDS.get(match.group(1) if match else "", "other"))


def _placed(marked: str, tokens: list[_Token]) -> bool:
    """Give each token the context it is in; False when one may not be where it is."""
    position = 0
    for piece_index, piece in enumerate(HTML_PIECE_RE.finditer(marked)):
        for mark in MARK_RE.finditer(marked, position, piece.start()):
            if marked[max(0, mark.start() - 2) : mark.start()].endswith(("<", "</")):
                return False  # a tag's name
            tokens[int(mark.group(1))].context = ("text",)
        position = piece.end()
        for mark in MARK_RE.finditer(piece.group(0)):
            token = tokens[int(mark.group(1))]
            if piece.group("comment"):
                token.context = ("comment", piece_index)
            elif piece.group("tag"):
                token.context = _attribute_context(piece.group("tag"), mark.start(), piece_index)
    for mark in MARK_RE.finditer(marked, position):
        tokens[int(mark.group(1))].context = ("text",)
    return all(token.context and token.kind != "other" for token in tokens)


def _attribute_context(tag: str, at: int, piece_index: int) -> tuple:
    for attribute in ATTRIBUTE_RE.finditer(tag):
        name = attribute.group(1).lower()
        if attribute.start(2) <= at < attribute.end(2):
            return () if name in ("class", "id", "style") else ("attribute", piece_index, name)
    return ()


def _wraps_whole_elements(marked: str, tokens: list[_Token]) -> bool:
    """Blocks match up, each within one context, and in text each branch holds whole
    elements."""
    open_blocks: list[_Token] = []
    last = None  # where the last block tag's mark ends
    for mark in MARK_RE.finditer(marked):
        token = tokens[int(mark.group(1))]
        if token.kind not in ("open", "branch", "close"):
            continue
        if token.kind != "open" and (not open_blocks or open_blocks[-1].context != token.context):
            return False
        inside = last is not None and open_blocks and token.context == ("text",)
        if inside and not _balanced(marked[last : mark.start()]):
            return False
        if token.kind == "open":
            open_blocks.append(token)
        elif token.kind == "close":
            open_blocks.pop()
        last = mark.end()
    return not open_blocks


def _balanced(fragment: str) -> bool:
    open_elements: list[str] = []
    for piece in HTML_PIECE_RE.finditer(fragment):
        tag = piece.group("tag")
        if not tag:
            continue  # comments, whole raw-text elements, declarations
        name = piece.group("name").lower()
        if tag.startswith("</"):
            if not open_elements or open_elements.pop() != name:
                return False
        elif name not in VOID_ELEMENTS and not tag.endswith("/>"):
            open_elements.append(name)
    return not open_elements


def _selectors(html: str) -> list[str]:
    selectors = []
    for piece in HTML_PIECE_RE.finditer(html):
        if (piece.group("rawname") or "").lower() == "style":
            sheet = re.sub(r"/\*.*?\*/", "", piece.group("raw"), flags=re.DOTALL)
            sheet = sheet[sheet.index(">") + 1 :]
            selectors += [
                s for s in re.findall(r"([^{}]*)\{", sheet) if not s.strip().startswith("@")
            ]
    return selectors


def _tag_sequence(html: str) -> list[str]:
    """The document's tags in order, without those a parser may imply or the inliner drops."""
    sequence = []
    for piece in HTML_PIECE_RE.finditer(html):
        if piece.group("tag"):
            name = piece.group("name").lower()
            if name not in IMPLIED_ELEMENTS and name != "link":
                sequence.append(("/" if piece.group("tag").startswith("</") else "") + name)
    return sequence


def _text_layout(inlined: str, tokens: list[_Token], stand_ins: dict, words) -> object | None:
    """The text part as Liquid, derived once from the prepared HTML: placeholders as words,
    html_to_text, the Liquid put back. None when that cannot stand for deriving the text
    from each message's HTML: a block tag lost in hidden content, whitespace control
    (it would join the lines the text is made of), or Liquid-like text that is not Liquid."""
    if any(
        token.kind == "writing" or re.match(r"\{[{%]-|.*-[}%]\}$", token.text, re.DOTALL)
        for token in tokens
    ):
        return None
    document = inlined
    for index, token in enumerate(tokens):
        if token.context == ("text",):
            document = document.replace(stand_ins[index], stand_ins[index][4:-3], 1)
    text = html_to_text(document, mark_href=words.match)
    if "{{" in text or "{%" in text:
        return None
    found = [int(n) for n in words.findall(text)]
    needed = [i for i, token in enumerate(tokens) if token.kind != "output"]
    kept = set(needed)
    if [i for i in found if i in kept] != needed or len(set(found)) != len(found):
        return None

    def liquid_for(match):
        token = tokens[int(match.group(1))]
        if token.kind == "output":
            as_text = "orchestra_as_text" if token.context == ("text",) else "orchestra_as_href"
            return f"{token.text[:-2].rstrip()} | {as_text} }}}}"
        return token.text

    try:
        return liquid_text.from_string(words.sub(liquid_for, text))
    except LiquidError:
        return None


def _layout_text(template, scope: dict, links: list[str], tracked: list[str]) -> str:
    """A message's text part from its version's text layout: as html_to_text would derive
    it from the message's HTML, tracked links included."""
    raw = template.render(**scope)
    raw = HREF_MARK_RE.sub(
        lambda m: f" ({m.group(1)})" if m.group(1).startswith(("http://", "https://")) else "", raw
    )
    text = _tidy_text(raw)
    for url, tracked_url in zip(links, tracked, strict=True):
        text = text.replace(f" ({url})", f" ({tracked_url})")
    return text


def _finish_html(html: str, preheader: str, unsubscribe_url: str) -> str:
    if unsubscribe_url not in html:
        html = _before_body_end(html, _footer(html_lib.escape(unsubscribe_url)))
    if preheader.strip():
        html = _after_body_start(html, _hidden(html_lib.escape(" ".join(preheader.split()))))
    return inliner.inline(html)


def _footer(href: str) -> str:
    return (
        '<p style="font-size:12px;color:#666;text-align:center;margin:24px 0">'
        f'<a href="{href}" style="color:#666">{html_lib.escape(_("Unsubscribe"))}</a></p>'
    )


def _hidden(content: str) -> str:
    return f'<div style="display:none;max-height:0;overflow:hidden;opacity:0">{content}</div>'


def _after_body_start(html: str, snippet: str) -> str:
    match = BODY_RE.search(html)
    return html[: match.end()] + snippet + html[match.end() :] if match else snippet + html


def _before_body_end(html: str, snippet: str) -> str:
    index = html.lower().rfind("</body>")
    return html[:index] + snippet + html[index:] if index >= 0 else html + snippet


def _track_links(html: str, message_id: int, unsubscribe_url: str, track: "_Tracker"):
    """Each http(s) link goes through the click redirect; the message keeps the list, and
    the redirect follows only links from it (no open redirect). Answers the HTML, the
    links and their tracked URLs."""
    links: list[str] = []
    tracked: list[str] = []

    def replace(match):
        url = html_lib.unescape(match.group(3))
        if url == unsubscribe_url:
            return match.group(0)
        if url not in links:
            links.append(url)
            tracked.append(track("click", message_id, len(links) - 1))
        return f"{match.group(1)}{match.group(2)}{tracked[links.index(url)]}{match.group(2)}"

    return LINK_RE.sub(replace, html), links, tracked


def _add_open_pixel(html: str, message_id: int, track: "_Tracker") -> str:
    pixel = (
        f'<img src="{track("open", message_id)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    return _before_body_end(html, pixel)


def tracking_url(kind: str, message_id: int, link: int | None = None) -> str:
    """Signed as signing.Signer.sign_object([message_id(, link)]) signs, which is what
    read_tracking_token checks; a message carries several, so the key is derived once."""
    return _Tracker()(kind, message_id, link)


class _Tracker:
    """tracking_url with what is the same for all of a message's URLs looked up once (the
    script prefix and URLconf are thread-local lookups)."""

    def __init__(self):
        self.site, self.secret = settings.SITE_URL, settings.SECRET_KEY
        self.script_prefix, self.urlconf = get_script_prefix(), get_urlconf()

    def __call__(self, kind: str, message_id: int, link: int | None = None) -> str:
        data = f"[{int(message_id)}]" if link is None else f"[{int(message_id)},{int(link)}]"
        value = signing.b64_encode(data.encode()).decode()
        token = f"{value}:{_signer(kind, self.secret).signature(value)}"
        before, after = _tracking_path(kind, self.script_prefix, self.urlconf)
        return f"{self.site}{before}{token}{after}"


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

    def __init__(self, mark_href=None):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.hidden: list = []  # [tag, depth] while inside an element hidden by its style
        self.href_stack: list[str | None] = []
        self.mark_href = mark_href

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
            elif href and self.mark_href and self.mark_href(href):
                # Known only per message whether it is http(s): kept or dropped then.
                self.parts.append(f"\x01 ({href})\x02")
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


def html_to_text(html: str, mark_href=None) -> str:
    """A readable plain-text part from the HTML: paragraphs kept, links shown as URLs.
    (`mark_href(href)`: whether a link that is not http(s) is to be marked, see
    _email_layout.)"""
    if not html:
        return ""
    extractor = _TextExtractor(mark_href)
    extractor.feed(html)
    return _tidy_text("".join(extractor.parts))


def _tidy_text(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


BLANK_LINES_RE = re.compile(r"\n{3,}")
