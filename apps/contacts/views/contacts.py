from django.shortcuts import render

from apps.accounts.access import workspace_view


@workspace_view()
def contact_list(request):
    return render(request, "contacts/contact_list.html", {})
