"""Templates: problems reported with their line on save, and a version turned into one
contact's email (Liquid in its sandbox, contact data escaped in HTML, CSS inlined, text
derived, preheader hidden, unsubscribe link always there, http(s) links tracked)."""

import re

import pytest
from django.core import signing
from django.utils.translation import get_language

from apps.channels.services import rendering
from apps.channels.services.rendering import (
    SIGNING_SALTS,
    read_tracking_token,
    render_message,
    template_problems,
    tracking_url,
)
from apps.channels.services.scope import scope_for
from apps.segments.models import Segment, SegmentMembership
from tests.channels.factories import email_template
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

MESSAGE_ID = 4242


def render(workspace, contact, message_id=MESSAGE_ID, **content):
    version = email_template(workspace, **content).versions.get()
    return render_message(version, scope_for(contact, workspace), message_id, "email")


# Problems on save --------------------------------------------------------------------------


def test_a_tag_left_open_is_reported_with_the_line_where_the_template_ends():
    html = "<p>one</p>\n<p>{% if contact.first_name %}\n<b>x</b>\n</p>"

    problems = template_problems("email", {"subject": "Hi", "html": html})

    assert list(problems) == ["html"]
    [problem] = problems["html"]
    assert problem.startswith("Line 4: ") and "endif" in problem


def test_an_unclosed_output_in_the_subject_is_reported_on_line_1():
    problems = template_problems("email", {"subject": "Hi {{ contact.first_name", "html": "<p/>"})

    assert problems == {"subject": ["Line 1: expected '}}', found end of file"]}


def test_a_misspelt_contact_field_is_reported_with_its_line_and_the_fields_there_are():
    html = "<p>a</p>\n<p>b</p>\n<p>Hi {{ contact.frist_name }}</p>\n{{ shop.name }}"

    problems = template_problems("email", {"subject": "Hi", "html": html})

    assert problems == {
        "html": [
            "Line 3: unknown variable contact.frist_name (contact has attributes, created_at, "
            "email, external_id, first_name, id, last_name, locale, name, phone, segments, "
            "timezone)",
            "Line 4: unknown variable shop.name",
        ]
    }


def test_a_sound_template_has_no_problems():
    content = {
        "subject": "Hi {{ contact.first_name | default: 'there' }}",
        "preheader": "{{ event.properties.sku }}",
        "html": "{% for slug in contact.segments %}<p>{{ slug }}</p>{% endfor %}"
        '<a href="{{ unsubscribe_url }}">bye</a>',
        "text": "{{ contact.attributes.plan }} {{ workspace.name }}",
    }

    assert template_problems("email", content) == {}


def test_an_email_needs_a_subject_and_some_content():
    assert template_problems("email", {"subject": " ", "html": "", "text": ""}) == {
        "subject": ["An email needs a subject."],
        "html": ["Write the HTML or the text part."],
    }


def test_broken_mjml_is_reported():
    problems = template_problems("email", {"subject": "Hi", "html": "<mjml><mj-body><mj-sectio"})

    assert list(problems) == ["html"]
    assert problems["html"][0].startswith("MJML: ")


# Rendering ----------------------------------------------------------------------------------


def test_the_default_filter_stands_in_for_a_missing_first_name(workspace):
    named = ContactFactory(workspace=workspace, first_name="Ann")
    nameless = ContactFactory(workspace=workspace, first_name="")

    assert render(workspace, named).subject == "Hello Ann"
    assert render(workspace, nameless, slug="again").subject == "Hello there"


def test_a_segment_block_shows_only_to_the_segments_members(workspace):
    vip = Segment.objects.create(workspace=workspace, name="VIP", slug="vip", rule={})
    member = ContactFactory(workspace=workspace)
    other = ContactFactory(workspace=workspace)
    SegmentMembership.objects.create(workspace=workspace, segment=vip, contact=member)
    version = email_template(
        workspace,
        html='<body><p>News</p>{% if contact.segments contains "vip" %}'
        "<p>Your VIP preview</p>{% endif %}</body>",
    ).versions.get()

    for_member = render_message(version, scope_for(member, workspace), 1, "email")
    for_other = render_message(version, scope_for(other, workspace), 2, "email")

    assert "Your VIP preview" in for_member.html and "Your VIP preview" in for_member.text
    assert "Your VIP preview" not in for_other.html and "Your VIP preview" not in for_other.text
    assert "News" in for_other.html


def test_contact_data_is_escaped_inside_html_and_kept_as_written_in_subject_and_text(workspace):
    contact = ContactFactory(workspace=workspace, first_name='<script>alert("x")</script> & Co')

    rendered = render(workspace, contact)

    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(" in rendered.html
    assert rendered.subject == 'Hello <script>alert("x")</script> & Co'
    assert 'Hi <script>alert("x")</script> & Co, see what is new' in rendered.text


def test_css_is_inlined_and_the_style_sheet_dropped(workspace):
    rendered = render(workspace, ContactFactory(workspace=workspace, first_name="Ann"))

    assert '<p style="color: #333;">Hi Ann' in rendered.html
    assert "<style" not in rendered.html


def test_the_text_part_is_derived_from_the_html_when_left_empty(workspace):
    html = (
        "<html><head><title>Ignored</title><style>p { margin: 0 }</style></head><body>"
        "<h1>Hi {{ contact.first_name }}</h1><p>See <b>what</b> is "
        '<a href="https://shop.example.com/new">new</a>.</p>'
        "<ul><li>Shoes</li><li>Bags</li></ul></body></html>"
    )

    rendered = render(workspace, ContactFactory(workspace=workspace, first_name="Ann"), html=html)

    click = tracking_url("click", MESSAGE_ID, 0)
    unsubscribe = tracking_url("unsubscribe", MESSAGE_ID)
    assert rendered.text == (
        f"Hi Ann\n\nSee what is new ({click}).\n\n- Shoes\n\n- Bags\n\nUnsubscribe ({unsubscribe})"
    )


def test_a_text_part_written_by_hand_is_used_as_written(workspace):
    rendered = render(
        workspace,
        ContactFactory(workspace=workspace, first_name="Ann"),
        text="Hi {{ contact.first_name }}, plain and simple.",
    )

    unsubscribe = tracking_url("unsubscribe", MESSAGE_ID)
    assert rendered.text == f"Hi Ann, plain and simple.\n\nUnsubscribe: {unsubscribe}"


def test_the_preheader_is_hidden_at_the_top_of_the_body_and_left_out_of_the_text(workspace):
    rendered = render(
        workspace,
        ContactFactory(workspace=workspace, first_name="Ann"),
        preheader="Only  for {{ contact.first_name }}",
    )

    body = re.search(r"<body[^>]*>(.*)", rendered.html, re.DOTALL).group(1)
    assert body.startswith(
        '<div style="display:none;max-height:0;overflow:hidden;opacity:0">Only for Ann</div>'
    )
    assert "Only for Ann" not in rendered.text


def test_an_unsubscribe_link_is_added_when_the_template_has_none(workspace):
    rendered = render(workspace, ContactFactory(workspace=workspace))

    unsubscribe = tracking_url("unsubscribe", MESSAGE_ID)
    assert rendered.html.count(unsubscribe) == 1
    assert rendered.text.count(unsubscribe) == 1
    assert rendered.headers["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert rendered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_templates_own_unsubscribe_link_is_kept_alone_and_not_tracked(workspace):
    html = '<body><p>Hi</p><a href="{{ unsubscribe_url }}">Leave this list</a></body>'

    rendered = render(workspace, ContactFactory(workspace=workspace), html=html)

    unsubscribe = tracking_url("unsubscribe", MESSAGE_ID)
    assert rendered.html.count(unsubscribe) == 1
    assert f'<a href="{unsubscribe}">Leave this list</a>' in rendered.html
    assert "Unsubscribe</a>" not in rendered.html
    assert rendered.links == []


def test_mjml_templates_compile_to_html_and_render_per_contact(workspace):
    mjml = (
        "<mjml><mj-body><mj-section><mj-column>"
        "<mj-text>Hi {{ contact.first_name }}</mj-text>"
        '<mj-button href="https://shop.example.com/">Shop</mj-button>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    assert template_problems("email", {"subject": "Hi", "html": mjml}) == {}

    rendered = render(workspace, ContactFactory(workspace=workspace, first_name="Ann"), html=mjml)

    assert "<mj-" not in rendered.html
    assert "<table" in rendered.html and "Hi Ann" in rendered.html
    assert rendered.links == ["https://shop.example.com/"]


def test_only_http_and_https_links_are_tracked(workspace):
    html = (
        '<body><a href="https://shop.example.com/a?x=1&amp;y=2">a</a>'
        '<a href="http://blog.example.com/b">b</a>'
        '<a href="mailto:help@example.com">mail</a><a href="tel:+4512345678">call</a>'
        '<a href="#top">top</a><a href="/relative">relative</a>'
        '<a href="https://shop.example.com/a?x=1&amp;y=2">a again</a></body>'
    )

    rendered = render(workspace, ContactFactory(workspace=workspace), html=html)

    assert rendered.links == ["https://shop.example.com/a?x=1&y=2", "http://blog.example.com/b"]
    assert rendered.html.count(tracking_url("click", MESSAGE_ID, 0)) == 2
    assert rendered.html.count(tracking_url("click", MESSAGE_ID, 1)) == 1
    for untouched in ("mailto:help@example.com", "tel:+4512345678", "#top", "/relative"):
        assert f'href="{untouched}"' in rendered.html
    assert "shop.example.com" not in rendered.html and "blog.example.com" not in rendered.html


def test_the_open_pixel_closes_the_body(workspace):
    rendered = render(workspace, ContactFactory(workspace=workspace))

    pixel = tracking_url("open", MESSAGE_ID)
    assert re.search(rf'<img src="{re.escape(pixel)}"[^>]*></body>', rendered.html)


def test_a_preview_links_to_the_real_pages_and_tracks_nothing(workspace):
    rendered = render(workspace, ContactFactory(workspace=workspace), message_id=None)

    assert '<a href="https://shop.example.com/new">' in rendered.html
    assert "/t/" not in rendered.html and rendered.links == [] and rendered.headers == {}
    assert "#unsubscribe" in rendered.html


def test_tracking_tokens_read_back_and_a_tampered_one_is_refused():
    token = tracking_url("click", 77, 3).rstrip("/").rsplit("/", 1)[1]

    assert token == signing.Signer(salt=SIGNING_SALTS["click"]).sign_object([77, 3])
    assert read_tracking_token("click", token) == [77, 3]
    assert read_tracking_token("open", token) is None  # another kind's salt
    assert read_tracking_token("click", token.replace("Wzc3", "Wzc4")) is None


# A version's HTML prepared once ----------------------------------------------------------


def per_message(monkeypatch, version, scope, message_id=MESSAGE_ID):
    """The message as inlining and deriving the text for this message alone makes it."""

    def no_layout(*args):
        return None

    no_layout.__wrapped__ = no_layout
    with monkeypatch.context() as patch:
        patch.setattr(rendering, "_email_layout", no_layout)
        return render_message(version, scope, message_id, "email")


PREPARED_ONCE = {
    "segment block and links": (
        "<html><head><style>body { color: #222 } .box p { line-height: 1.5 } "
        'a:hover { color: red }</style></head><body><div class="box">'
        "<h1>Hi {{ contact.first_name | default: 'there' }} &amp; co</h1>"
        '{% if contact.segments contains "vip" %}<p>VIP: <a href="https://shop.example.com/'
        'vip?c={{ contact.id }}&amp;x=1">early access</a></p>{% endif %}'
        '<p><a href="https://shop.example.com/new">New</a> and '
        '<a href="mailto:help@shop.example.com">mail us</a></p></div></body></html>'
    ),
    "a loop over list items": (
        "<body><style>li { color: blue } ul li b { font-weight: bold }</style><ul>"
        "{% for slug in contact.segments %}<li><b>{{ slug | upcase }}</b></li>{% endfor %}"
        "</ul><p>{{ contact.attributes.note }}</p></body>"
    ),
    "mjml": (
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ contact.first_name }}</mj-text>"
        '<mj-button href="https://shop.example.com/?c={{ contact.id }}">Shop</mj-button>'
        "</mj-column></mj-section></mj-body></mjml>"
    ),
    "a fragment with its own unsubscribe link": (
        '<p>Hi {{ contact.first_name }}</p><p><a href="{{ unsubscribe_url }}">Leave</a></p>'
    ),
}


@pytest.mark.parametrize("html", PREPARED_ONCE.values(), ids=PREPARED_ONCE.keys())
def test_a_prepared_version_renders_what_inlining_each_message_makes(workspace, monkeypatch, html):
    vip = Segment.objects.create(workspace=workspace, name="VIP", slug="vip", rule={})
    member = ContactFactory(
        workspace=workspace, first_name='Ann "A" <b>', attributes={"note": "two\n  lines & more"}
    )
    SegmentMembership.objects.create(workspace=workspace, segment=vip, contact=member)
    other = ContactFactory(workspace=workspace, first_name="")
    version = email_template(workspace, html=html, preheader="For {{ contact.first_name }}")
    version = version.versions.get()
    rendering._email_layout.cache_clear()

    for contact in (member, other):
        scope = scope_for(contact, workspace)
        for message_id in (MESSAGE_ID, None):
            prepared = render_message(version, scope, message_id, "email")
            alone = per_message(monkeypatch, version, scope, message_id)
            # The same document; Liquid writes a quote in text as &#34;, the parser as it is.
            assert prepared.html.replace("&#34;", '"') == alone.html
            assert prepared.text == alone.text
            assert prepared.links == alone.links

    [layout] = [rendering._email_layout(version.pk, version.html, True, get_language())]
    assert layout is not None and layout.text is not None
    assert rendering._email_layout.cache_info().misses == 1


def test_css_that_depends_on_liquid_is_inlined_for_each_message(workspace):
    html = (
        "<body><style>.pro { color: red } .vip p { color: gold } "
        "li:first-child { font-weight: bold }</style>"
        '<p class="{{ contact.attributes.plan }}">Plan</p>'
        '{% if contact.segments contains "vip" %}<div class="vip">{% endif %}'
        '<p>Offer</p>{% if contact.segments contains "vip" %}</div>{% endif %}'
        "<ul>{% if contact.first_name != '' %}<li>Name</li>{% endif %}<li>Always</li></ul></body>"
    )
    version = email_template(workspace, html=html).versions.get()
    vip = Segment.objects.create(workspace=workspace, name="VIP", slug="vip", rule={})
    pro = ContactFactory(workspace=workspace, first_name="", attributes={"plan": "pro"})
    SegmentMembership.objects.create(workspace=workspace, segment=vip, contact=pro)
    free = ContactFactory(workspace=workspace, first_name="Bo", attributes={"plan": "free"})

    for_pro = render_message(version, scope_for(pro, workspace), 1, "email").html
    for_free = render_message(version, scope_for(free, workspace), 2, "email").html

    assert rendering._email_layout(version.pk, version.html, False, get_language()) is None
    assert '<p class="pro" style="color: red;">Plan</p>' in for_pro
    assert '<p class="free">Plan</p>' in for_free
    assert '<p style="color: gold;">Offer</p>' in for_pro
    assert "<p>Offer</p>" in for_free
    assert '<li style="font-weight: bold;">Always</li>' in for_pro  # the first item here
    assert '<li style="font-weight: bold;">Name</li><li>Always</li>' in for_free


def test_an_unsubscribe_link_left_out_by_a_condition_is_added_for_that_message(workspace):
    html = (
        '<body><p>Hi</p>{% if contact.attributes.plan == "pro" %}'
        '<a href="{{ unsubscribe_url }}">Leave</a>{% endif %}</body>'
    )
    version = email_template(workspace, html=html).versions.get()
    pro = ContactFactory(workspace=workspace, attributes={"plan": "pro"})
    free = ContactFactory(workspace=workspace, attributes={"plan": "free"})

    for_pro = render_message(version, scope_for(pro, workspace), 1, "email")
    for_free = render_message(version, scope_for(free, workspace), 2, "email")

    assert "Leave</a>" in for_pro.html and "Unsubscribe</a>" not in for_pro.html
    assert "Leave</a>" not in for_free.html and "Unsubscribe</a>" in for_free.html
    assert for_free.html.count(tracking_url("unsubscribe", 2)) == 1
    assert for_free.text.endswith(f"Unsubscribe ({tracking_url('unsubscribe', 2)})")
