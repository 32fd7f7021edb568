"""Settings → Channels: the workspace's channels and its delivery policy. Owners change
them; every member may look (secrets show only as "set" or "not set")."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.access import MANAGE, workspace_view
from apps.channels.forms import (
    ChannelForm,
    DeliveryPolicyForm,
    provider_settings_form,
    secret_values,
)
from apps.channels.models import Channel
from apps.channels.providers import PROVIDERS
from apps.channels.services import channel_settings
from apps.channels.services.policy import policy_for


def channel_for(request, pk: int) -> Channel:
    return get_object_or_404(Channel.objects.for_workspace(request.workspace), pk=pk)


def provider_info(provider) -> dict | None:
    """What pages show of a provider class (templates would call a class, so not the class)."""
    if provider is None:
        return None
    return {"key": provider.key, "label": provider.label}


def require_owner(request) -> None:
    if not request.membership.can_manage:
        raise PermissionDenied


@workspace_view(change=MANAGE)
def channel_list(request):
    """The channels, and the delivery policy form (which this page saves)."""
    policy = policy_for(request.workspace)
    form = DeliveryPolicyForm(request.POST or None, instance=policy)
    if request.method == "POST" and form.is_valid():
        form.instance.workspace = request.workspace
        form.save()
        messages.success(request, _("Delivery policy saved."))
        return redirect("channels:list")
    channels = channel_settings.workspace_channels(request.workspace)
    rows = [
        {
            "channel": channel,
            "provider": provider_info(PROVIDERS.get(channel.provider)),
            "secrets_set": channel_settings.secrets_set(channel),
        }
        for channel in channels
    ]
    context = {"rows": rows, "policy_form": form, "can_manage": request.membership.can_manage}
    return render(request, "channels/channel_list.html", context)


@workspace_view(change=MANAGE)
def channel_create(request):
    """Without `?provider=`: the providers to choose from, by type. With it: its form."""
    require_owner(request)
    provider = PROVIDERS.get(request.POST.get("provider") or request.GET.get("provider", ""))
    if provider is None:
        types = [
            (value, label, [provider_info(p) for p in providers])
            for value, label, providers in channel_settings.providers_by_type()
        ]
        context = {"types": types}
        return render(request, "channels/channel_new.html", context)
    channel = channel_settings.new_channel(request.workspace, provider)
    has_default = Channel.objects.for_workspace(request.workspace).filter(
        type=provider.channel_type, is_default=True
    )
    initial = {"name": str(provider.label), "is_default": not has_default.exists()}
    return channel_page(request, channel, provider, initial=initial)


@workspace_view(change=MANAGE)
def channel_edit(request, pk: int):
    channel = channel_for(request, pk)
    return channel_page(request, channel, PROVIDERS.get(channel.provider))


def channel_page(request, channel: Channel, provider, initial=None):
    data = request.POST if request.method == "POST" else None
    form = ChannelForm(data, instance=channel, initial=initial)
    settings_form = provider_settings_form(provider, channel, data)
    if request.method == "POST":
        creating = channel.pk is None
        if form.is_valid() and settings_form.is_valid():
            settings, secrets = secret_values(provider, settings_form)
            values = {key: form.cleaned_data[key] for key in ChannelForm.Meta.fields}
            try:
                channel_settings.save_channel(
                    channel, settings=settings, new_secrets=secrets, **values
                )
            except channel_settings.ChannelProblems as problems:
                for name, found in problems.channel.items():
                    form.add_error(name if name in form.fields else None, found)
                for name, found in problems.settings.items():
                    field = name if name in settings_form.fields else None
                    settings_form.add_error(field, found)
            else:
                text = _("The channel %(name)s was added.") if creating else _("Saved %(name)s.")
                messages.success(request, text % {"name": channel.name})
                return redirect("channels:list")
    context = {
        "channel": channel,
        "provider": provider_info(provider),
        "receipt_url": receipt_url(channel, provider) if request.membership.can_manage else "",
        "form": form,
        "settings_form": settings_form,
        "secrets_set": channel_settings.secrets_set(channel) if channel.pk else [],
        "can_manage": request.membership.can_manage,
    }
    return render(request, "channels/channel_form.html", context)


def receipt_url(channel: Channel, provider) -> str:
    """Where the provider reports deliveries back, for providers that do (SMS gateways). It
    authenticates those reports, so only owners see it."""
    if channel.pk is None or provider is None or not hasattr(provider, "receipt_url"):
        return ""
    try:
        return provider(channel).receipt_url()
    except NotImplementedError:
        return ""


@require_POST
@workspace_view(change=MANAGE)
def channel_delete(request, pk: int):
    channel = channel_for(request, pk)
    try:
        channel_settings.delete_channel(channel)
    except channel_settings.ChannelInUse as refusal:
        messages.error(request, str(refusal))
        return redirect("channels:edit", pk=channel.pk)
    messages.success(request, _("The channel %(name)s was deleted.") % {"name": channel.name})
    return redirect("channels:list")
