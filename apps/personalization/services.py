"""Content slots: which variant a contact gets now, and the impressions and clicks.

A decision costs one query: the slot and its variants are remembered by the process for
a few seconds (like API keys), every variant whose context globs match is compiled with
the segments' rule compiler into one column of a single SELECT on the contact's row,
and the highest-priority variant whose column is true wins.
"""

import datetime as dt
import fnmatch
import time
import uuid
from dataclasses import dataclass, field

from django.core import signing
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts.models import Workspace
from apps.contacts.models import AnonymousId, Contact
from apps.contacts.services.events import record_system_event
from apps.personalization.choices import (
    CONTEXT_KEYS,
    DEFAULT_VARIANT,
    SLOT_CLICKED,
    SLOT_IMPRESSION,
)
from apps.personalization.models import ContentSlot, Variant
from apps.segments import services as segments
from apps.segments.rules.compile import RuleError, compile_rule

# Changes made in another process are seen within this many seconds.
SLOT_CACHE_SECONDS = 5
SLOT_CACHE_SIZE = 10_000
IMPRESSION_SALT = "orchestra.personalization.impression"
CONTENT_KEYS = ("html", "title", "image", "url", "text")


class SlotNotFound(LookupError):
    pass


class InvalidImpression(ValueError):
    pass


class UnknownVariant(ValueError):
    pass


class InvalidVariant(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


# The slot as decisions need it, remembered per process ----------------------------------


@dataclass(frozen=True)
class VariantPlan:
    pk: int
    name: str
    content: dict
    rule: dict
    context_match: dict
    priority: int


@dataclass(frozen=True)
class SlotPlan:
    pk: int
    key: str
    default_content: dict
    variants: tuple[VariantPlan, ...]
    segment_rules: dict = field(default_factory=dict)


_slot_cache: dict[tuple[int, str], tuple[float, SlotPlan | None]] = {}


def slot_plan(workspace_id: int, key: str) -> SlotPlan | None:
    """The active slot with its active variants, best first (None: no such active slot)."""
    cached = _slot_cache.get((workspace_id, key))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    slot = ContentSlot.objects.filter(workspace_id=workspace_id, key=key, is_active=True).first()
    plan = build_plan(slot) if slot is not None else None
    if len(_slot_cache) >= SLOT_CACHE_SIZE:
        _slot_cache.clear()
    _slot_cache[(workspace_id, key)] = (time.monotonic() + SLOT_CACHE_SECONDS, plan)
    return plan


def build_plan(slot: ContentSlot) -> SlotPlan:
    variants = tuple(
        VariantPlan(v.pk, v.name, v.content, v.rule or {}, v.context_match or {}, v.priority)
        for v in slot.variants.filter(is_active=True).order_by("-priority", "pk")
    )
    rules = segments.rules_by_slug(slot.workspace) if _uses_segments(variants) else {}
    return SlotPlan(slot.pk, slot.key, slot.default_content, variants, rules)


def _uses_segments(variants) -> bool:
    from apps.segments.rules import iter_leaves

    return any("segment" in leaf for v in variants for leaf in iter_leaves(v.rule))


def forget_slots() -> None:
    """This process reads every slot again (one was changed here)."""
    _slot_cache.clear()


# Context --------------------------------------------------------------------------------


def clean_context(params) -> dict[str, str]:
    """The context keys a site sent (page, referrer, utm_*, language), as text."""
    return {key: str(params[key])[:2000] for key in CONTEXT_KEYS if params.get(key)}


def context_mismatch(context_match: dict, context: dict) -> str | None:
    """The first context key whose globs the context does not match (None: all match)."""
    for key, globs in context_match.items():
        value = context.get(key)
        patterns = globs if isinstance(globs, list) else [globs]
        if value is None or not any(fnmatch.fnmatchcase(value, str(p)) for p in patterns):
            return key
    return None


# Decisions ------------------------------------------------------------------------------


@dataclass
class VariantCheck:
    """Why a variant was or was not chosen (the preview panel shows these)."""

    name: str
    priority: int
    context_failed: str | None  # the context key that did not match
    rule_matched: bool | None  # None: not evaluated (the context did not match)
    rule_error: str | None = None


@dataclass
class Decision:
    slot: str
    variant: str
    content: dict
    contact_id: int | None
    impression_id: str | None = None
    checks: list[VariantCheck] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"slot": self.slot, "variant": self.variant, "content": self.content,
                "impression_id": self.impression_id}  # fmt: skip


def decide(
    workspace: Workspace,
    key: str,
    *,
    external_id: str | None = None,
    anonymous_id: str | None = None,
    contact_id: int | None = None,
    context: dict | None = None,
    record: bool = True,
    explain: bool = False,
    plan: SlotPlan | None = None,
) -> Decision:
    """The content of slot `key` for this contact now; with `record`, an impression on
    their timeline. An unknown or missing contact gets the default content and records
    nothing (an anonymous visitor is not created here: ingest creates contacts).
    With `explain`, every variant is evaluated and the checks say why each matched."""
    plan = plan or slot_plan(workspace.pk, key)
    if plan is None:
        raise SlotNotFound(key)
    context = context or {}
    checks = [
        VariantCheck(v.name, v.priority, context_mismatch(v.context_match, context), None)
        for v in plan.variants
    ]
    candidates = [
        (v, check) for v, check in zip(plan.variants, checks, strict=True)
        if check.context_failed is None or explain
    ]  # fmt: skip
    identity = _identity_sql(external_id, anonymous_id, contact_id)
    decision = Decision(plan.key, DEFAULT_VARIANT, plan.default_content, None, checks=checks)
    if identity is None:
        return decision
    now = timezone.now()
    columns, params = [], {}
    for index, (variant, check) in enumerate(candidates):
        try:
            sql, rule_params = _compile(workspace.pk, variant.rule, now, plan, f"v{index}_")
        except RuleError as exc:
            check.rule_error = str(exc)
            sql, rule_params = "FALSE", {}
        columns.append(f"({sql})")
        params |= rule_params
    identity_sql, identity_value = identity
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id{''.join(', ' + column for column in columns)} "  # noqa: S608
            f"FROM contacts_contact c WHERE c.workspace_id = %(workspace_id)s AND {identity_sql}",
            params | {"workspace_id": workspace.pk, "identity": identity_value},
        )
        row = cursor.fetchone()
    if row is None:
        return decision
    decision.contact_id = row[0]
    chosen = None
    for (variant, check), matched in zip(candidates, row[1:], strict=True):
        check.rule_matched = bool(matched)
        if chosen is None and matched and check.context_failed is None:
            chosen = variant
    if chosen is not None:
        decision.variant, decision.content = chosen.name, chosen.content
    if record:
        decision.impression_id = record_impression(workspace.pk, decision)
    return decision


def _identity_sql(external_id, anonymous_id, contact_id):
    if contact_id is not None:
        return "c.id = %(identity)s", contact_id
    if external_id:
        return "c.external_id = %(identity)s", str(external_id)
    if anonymous_id:
        return (
            "c.id = (SELECT a.contact_id FROM contacts_anonymousid a "
            "WHERE a.workspace_id = %(workspace_id)s AND a.anonymous_id = %(identity)s)",
            str(anonymous_id),
        )
    return None


def _compile(workspace_id: int, rule: dict, now: dt.datetime, plan: SlotPlan, prefix: str):
    if not rule:
        return "TRUE", {}
    return compile_rule(
        rule, workspace_id=workspace_id, now=now, segment_rule=plan.segment_rules.get,
        prefix=prefix,
    )  # fmt: skip


# Impressions and clicks -----------------------------------------------------------------


def record_impression(workspace_id: int, decision: Decision) -> str:
    """A slot_impression event on the contact's timeline; answers the impression id a
    click names (signed, so a click needs no lookup and cannot be forged)."""
    impression = uuid.uuid4().hex[:16]
    record_system_event(
        workspace_id, decision.contact_id, SLOT_IMPRESSION,
        {"slot": decision.slot, "variant": decision.variant, "impression": impression},
    )  # fmt: skip
    return signing.dumps(
        [workspace_id, decision.contact_id, decision.slot, decision.variant, impression],
        salt=IMPRESSION_SALT,
        compress=True,
    )


@dataclass
class Click:
    slot: str
    variant: str
    contact_id: int
    impression: str | None


def click_from_impression(workspace: Workspace, key: str, impression_id: str) -> Click:
    try:
        ws, contact_id, slot, variant, impression = signing.loads(
            impression_id, salt=IMPRESSION_SALT
        )
    except (signing.BadSignature, ValueError, TypeError):
        raise InvalidImpression(impression_id) from None
    if ws != workspace.pk or slot != key:
        raise InvalidImpression(impression_id)
    if not Contact.objects.for_workspace(workspace).filter(pk=contact_id).exists():
        raise InvalidImpression(impression_id)  # the contact was erased since
    return Click(slot, variant, contact_id, impression)


def click_for_contact(
    workspace: Workspace, key: str, variant: str, *, external_id=None, anonymous_id=None
) -> Click | None:
    """A click named by the contact and the variant they saw (None: no such contact)."""
    plan = slot_plan(workspace.pk, key)
    if plan is None:
        raise SlotNotFound(key)
    if variant != DEFAULT_VARIANT and variant not in {v.name for v in plan.variants}:
        raise UnknownVariant(variant)
    contact_id = None
    if external_id:
        contact_id = (
            Contact.objects.for_workspace(workspace)
            .filter(external_id=str(external_id))
            .values_list("pk", flat=True)
            .first()
        )
    elif anonymous_id:
        contact_id = (
            AnonymousId.objects.for_workspace(workspace)
            .filter(anonymous_id=str(anonymous_id))
            .values_list("contact_id", flat=True)
            .first()
        )
    if contact_id is None:
        return None
    return Click(key, variant, contact_id, None)


def record_click(workspace: Workspace, click: Click) -> None:
    """A slot_clicked event; name it a conversion event in the attribution settings to
    count clicks as conversions."""
    properties = {"slot": click.slot, "variant": click.variant}
    if click.impression:
        properties["impression"] = click.impression
    record_system_event(workspace.pk, click.contact_id, SLOT_CLICKED, properties)


# Managing slots -------------------------------------------------------------------------


def clean_content(content) -> list[str]:
    if not isinstance(content, dict):
        return [_('The content must be a JSON object such as {"html": "…"}.')]
    return [
        _("%(name)s must be text.") % {"name": repr(name)}
        for name, value in content.items()
        if not isinstance(value, str)
    ]


def variant_problems(
    workspace: Workspace, *, name: str, content, rule, context_match, slot=None, exclude_pk=None
) -> dict:
    """Every problem with a variant, by field (empty: it can be saved)."""
    errors: dict[str, list[str]] = {}
    if slot is not None and slot.variants.filter(name=name).exclude(pk=exclude_pk).exists():
        errors["name"] = [_("This slot has another variant of that name.")]
    if name == DEFAULT_VARIANT:
        errors["name"] = [_("“default” names the slot's default content; choose another name.")]
    if problems := clean_content(content):
        errors["content"] = problems
    if rule:
        if problems := segments.problems_in(workspace, rule):
            errors["rule"] = problems
    elif rule not in ({}, None):
        errors["rule"] = [_("The rule must be a JSON object (empty: every contact).")]
    if not isinstance(context_match, dict):
        errors["context_match"] = [_("The context match must be a JSON object.")]
    else:
        problems = []
        for key, globs in context_match.items():
            if key not in CONTEXT_KEYS:
                problems.append(
                    _("Unknown context key %(key)s; use one of %(keys)s.")
                    % {"key": repr(key), "keys": ", ".join(CONTEXT_KEYS)}
                )
            patterns = globs if isinstance(globs, list) else [globs]
            if not patterns or not all(isinstance(p, str) and p for p in patterns):
                problems.append(
                    _('%(key)s needs a glob such as "/pricing*" or a list of them.')
                    % {"key": repr(key)}
                )
        if problems:
            errors["context_match"] = problems
    return errors


def save_slot(slot: ContentSlot) -> ContentSlot:
    slot.save()
    transaction.on_commit(forget_slots)
    return slot


def save_variant(variant: Variant) -> Variant:
    errors = variant_problems(
        variant.slot.workspace, name=variant.name, content=variant.content, rule=variant.rule,
        context_match=variant.context_match, slot=variant.slot, exclude_pk=variant.pk,
    )  # fmt: skip
    if errors:
        raise InvalidVariant(errors)
    variant.save()
    transaction.on_commit(forget_slots)
    return variant


def delete_variant(variant: Variant) -> None:
    variant.delete()
    transaction.on_commit(forget_slots)


def delete_slot(slot: ContentSlot) -> None:
    slot.delete()
    transaction.on_commit(forget_slots)


# Numbers ----------------------------------------------------------------------------------

REPORT_DAYS = 30


def slot_totals(workspace: Workspace, days: int = REPORT_DAYS) -> dict[str, int]:
    """Impressions and clicks of every slot over the last days, from the daily rollup."""
    from django.db.models import Sum

    from apps.reporting.models import EventDaily

    since = timezone.localdate() - dt.timedelta(days=days - 1)
    rows = (
        EventDaily.objects.for_workspace(workspace)
        .filter(day__gte=since, name__in=[SLOT_IMPRESSION, SLOT_CLICKED])
        .values("name")
        .annotate(total=Sum("count"))
    )
    totals = {row["name"]: row["total"] for row in rows}
    return {"impressions": totals.get(SLOT_IMPRESSION, 0), "clicks": totals.get(SLOT_CLICKED, 0)}


# The preview panel ----------------------------------------------------------------------


def find_contact(workspace: Workspace, text: str) -> Contact | None:
    """The contact a marketer names by email, external id, anonymous id or #id."""
    text = text.strip()
    if not text:
        return None
    contacts = Contact.objects.for_workspace(workspace)
    if text.lstrip("#").isdigit() and text.startswith("#"):
        return contacts.filter(pk=int(text[1:])).first()
    found = contacts.filter(external_id=text).first() or contacts.filter(email__iexact=text).first()
    if found is None:
        anonymous = AnonymousId.objects.for_workspace(workspace).filter(anonymous_id=text).first()
        found = anonymous.contact if anonymous else None
    return found


def preview_decision(slot: ContentSlot, contact: Contact, context: dict) -> Decision:
    """What the contact would get now and why, without recording an impression. The slot
    is read afresh (not from the process's memory), so an edit shows at once, and an
    inactive slot can be tried before it goes live."""
    return decide(
        slot.workspace, slot.key, contact_id=contact.pk, context=context, record=False,
        explain=True, plan=build_plan(slot),
    )  # fmt: skip
