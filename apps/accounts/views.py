from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.access import MANAGE, workspace_view
from apps.accounts.forms import ApiKeyForm, MemberInviteForm, MembershipRoleForm, WorkspaceForm
from apps.accounts.middleware import SESSION_KEY
from apps.accounts.models import ApiKey, Membership


@workspace_view(change=MANAGE)
def workspace_settings(request):
    form = WorkspaceForm(request.POST or None, instance=request.workspace)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Workspace settings saved."))
        return redirect("accounts:workspace_settings")
    return render(request, "accounts/workspace_settings.html", {"form": form})


@workspace_view(change=MANAGE)
def member_list(request):
    form = MemberInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        membership = services.add_member(
            request.workspace, form.cleaned_data["email"], form.cleaned_data["role"], request.user
        )
        messages.success(
            request,
            _("%(email)s is now a member of %(workspace)s.")
            % {"email": membership.user.email, "workspace": request.workspace.name},
        )
        return redirect("accounts:member_list")
    memberships = Membership.objects.for_workspace(request.workspace).select_related("user")
    return render(request, "accounts/member_list.html", {"form": form, "memberships": memberships})


@require_POST
@workspace_view(change=MANAGE)
def member_role(request, pk: int):
    membership = get_object_or_404(Membership.objects.for_workspace(request.workspace), pk=pk)
    form = MembershipRoleForm(request.POST)
    if form.is_valid():
        try:
            services.change_role(membership, form.cleaned_data["role"])
        except services.LastOwnerError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Role of %(email)s changed.") % {"email": membership.user})
    return redirect("accounts:member_list")


@require_POST
@workspace_view(change=MANAGE)
def member_remove(request, pk: int):
    membership = get_object_or_404(Membership.objects.for_workspace(request.workspace), pk=pk)
    try:
        services.remove_member(membership)
    except services.LastOwnerError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(email)s was removed.") % {"email": membership.user})
    return redirect("accounts:member_list")


@workspace_view(change=MANAGE)
def api_key_list(request):
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        _api_key, new_key = services.create_api_key(
            request.workspace,
            form.cleaned_data["name"],
            form.cleaned_data["scopes"],
            created_by=request.user,
        )
        form = ApiKeyForm()
    api_keys = ApiKey.objects.for_workspace(request.workspace).select_related("created_by")
    return render(
        request,
        "accounts/api_key_list.html",
        {"form": form, "api_keys": api_keys, "new_key": new_key},
    )


@require_POST
@workspace_view(change=MANAGE)
def api_key_revoke(request, pk: int):
    api_key = get_object_or_404(ApiKey.objects.for_workspace(request.workspace), pk=pk)
    api_key.revoke()
    if request.htmx:
        return render(request, "accounts/partials/api_key_row.html", {"api_key": api_key})
    messages.success(request, _("The key %(key)s was revoked.") % {"key": api_key})
    return redirect("accounts:api_key_list")


@require_POST
@login_required
def switch_workspace(request, slug: str):
    membership = get_object_or_404(services.memberships_of(request.user), workspace__slug=slug)
    request.session[SESSION_KEY] = membership.workspace_id
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "dashboard"
    return redirect(next_url)
