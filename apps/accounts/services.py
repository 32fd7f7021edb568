"""Workspaces, memberships and API keys: the operations every entry point calls."""

import copy
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from apps.accounts.choices import Role, Scope
from apps.accounts.models import API_KEY_PREFIX, ApiKey, Membership, User, Workspace, hash_api_key

DEMO_WORKSPACE_SLUG = "demo"
DEFAULT_ADMIN_EMAIL = "admin@example.com"
# Writing last_used_at on every request would turn each API read into a write.
LAST_USED_RESOLUTION_SECONDS = 60
# Each server process remembers a key it has checked for this long, sparing ingest a query
# per request; a revoked key stops working on every process within this time.
API_KEY_CACHE_SECONDS = 5
API_KEY_CACHE_SIZE = 1_000
_api_key_cache: dict[str, tuple[float, ApiKey]] = {}


class LastOwnerError(Exception):
    """A workspace must keep at least one owner."""


@transaction.atomic
def create_workspace(name: str, slug: str, owner: User, timezone_name: str = "UTC") -> Workspace:
    workspace = Workspace.objects.create(name=name, slug=slug, timezone=timezone_name)
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def memberships_of(user: User):
    return (
        Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name")
    )


def membership_for(user: User, workspace_id: int | None) -> Membership | None:
    """The user's membership in the chosen workspace, else in their first one."""
    memberships = memberships_of(user)
    if workspace_id is not None:
        chosen = memberships.filter(workspace_id=workspace_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


@transaction.atomic
def add_member(workspace: Workspace, email: str, role: str, invited_by: User) -> Membership:
    """Add a person by email; someone new gets an account and an email to choose a password."""
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email=email).first()
    invite = user is None
    if invite:
        user = User.objects.create_user(email=email, password=None)
    membership, _created = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    if invite:
        transaction.on_commit(lambda: send_invitation(user, workspace, invited_by))
    return membership


def send_invitation(user: User, workspace: Workspace, invited_by: User) -> None:
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    send_mail(
        subject=_("You are invited to %(workspace)s on Orchestra") % {"workspace": workspace.name},
        message=_(
            "%(inviter)s added you to the workspace %(workspace)s.\n\n"
            "Choose your password here to sign in:\n%(link)s\n"
        )
        % {
            "inviter": invited_by.get_full_name(),
            "workspace": workspace.name,
            "link": settings.SITE_URL + path,
        },
        from_email=None,
        recipient_list=[user.email],
    )


def _ensure_another_owner(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.for_workspace(membership.workspace).filter(role=Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise LastOwnerError(_("A workspace needs at least one owner."))


@transaction.atomic
def change_role(membership: Membership, role: str) -> Membership:
    if role != Role.OWNER:
        _ensure_another_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(membership: Membership) -> None:
    _ensure_another_owner(membership)
    membership.delete()


def create_api_key(
    workspace: Workspace, name: str, scopes: list[str], created_by: User | None = None
) -> tuple[ApiKey, str]:
    """Create a key and answer it with the raw key, which is never retrievable again."""
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise ValueError(f"Scopes must be some of {', '.join(Scope.values)}; got {scopes!r}.")
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        prefix=raw_key[: len(API_KEY_PREFIX) + 8],
        hashed_key=hash_api_key(raw_key),
        scopes=sorted(set(scopes)),
        created_by=created_by,
    )
    return api_key, raw_key


def authenticate_api_key(raw_key: str) -> ApiKey | None:
    """The active key matching raw_key, with its last use recorded (at most once a minute)."""
    hashed_key = hash_api_key(raw_key)
    cached = _api_key_cache.get(hashed_key)
    if cached is not None and cached[0] > time.monotonic():
        return _copy_of(cached[1])
    found = ApiKey.objects.select_related("workspace").filter(
        hashed_key=hashed_key, revoked_at__isnull=True
    )[:1]  # the hash is unique; no ORDER BY needed
    api_key = next(iter(found), None)
    if api_key is None:
        _api_key_cache.pop(hashed_key, None)
        return None
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is None or api_key.last_used_at < stale:
        # Conditional, so concurrent requests write it once.
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
    if len(_api_key_cache) >= API_KEY_CACHE_SIZE:
        _api_key_cache.clear()
    _api_key_cache[hashed_key] = (time.monotonic() + API_KEY_CACHE_SECONDS, api_key)
    return _copy_of(api_key)


def _copy_of(api_key: ApiKey) -> ApiKey:
    """A request may change its key or workspace without changing the others'."""
    copied = copy.copy(api_key)
    copied.workspace = copy.copy(api_key.workspace)
    return copied


def forget_api_keys(**_signal) -> None:
    """This process checks every key again (a key or workspace changed here)."""
    _api_key_cache.clear()


@dataclass
class FirstRun:
    workspace: Workspace
    owner: User
    password: str | None  # set only when this call created the owner with a generated password


@transaction.atomic
def ensure_first_run(email: str | None, password: str | None) -> FirstRun:
    """Create the demo workspace and its owner unless they exist (make run's first start)."""
    email = (email or DEFAULT_ADMIN_EMAIL).lower()
    owner = User.objects.filter(email=email).first()
    generated = None
    if owner is None:
        generated = None if password else secrets.token_urlsafe(12)
        owner = User.objects.create_superuser(email=email, password=password or generated)
    workspace = Workspace.objects.filter(slug=DEMO_WORKSPACE_SLUG).first()
    if workspace is None:
        workspace = create_workspace("Demo", DEMO_WORKSPACE_SLUG, owner)
    return FirstRun(workspace=workspace, owner=owner, password=generated)
