"""The settings page's API tokens: make one, list them, revoke one. Each member sees their own;
owners see and revoke every token of the team.

A new token's secret waits in the session only until the page after the form shows it (and
takes it out): a reload shows it no more, and re-sends no form that would make another."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from domains import tenancy
from mailsec.api.models import MAX_EXPIRY_DAYS, ApiToken, Scope
from mailsec.models import AuditAction, AuditEvent

NEW_TOKEN_KEY = "show_new_api_token"
# The scopes in the reader's language (the API's own labels stay English, a stable contract).
SCOPE_CHOICES = [(Scope.READ, gettext_lazy("Read")), (Scope.WRITE, gettext_lazy("Read and write"))]
EXPIRY_CHOICES = [
    ("", gettext_lazy("Never")),
    ("30", gettext_lazy("In 30 days")),
    ("90", gettext_lazy("In 90 days")),
    ("365", gettext_lazy("In a year")),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What uses it, e.g. “provisioning script”."),
    )
    scope = forms.ChoiceField(
        label=gettext_lazy("Access"), choices=SCOPE_CHOICES, initial=Scope.READ
    )
    expires_days = forms.TypedChoiceField(
        label=gettext_lazy("Expires"),
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
    )

    def __init__(self, *args, can_edit: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_edit:  # a viewer's token could never write
            self.fields["scope"].choices = SCOPE_CHOICES[:1]

    def clean_expires_days(self):
        days = self.cleaned_data["expires_days"]
        if days is not None and not 1 <= days <= MAX_EXPIRY_DAYS:
            raise forms.ValidationError(
                _("Between 1 and %(most)s days.") % {"most": MAX_EXPIRY_DAYS}
            )
        return days


def visible_tokens(membership):
    tokens = ApiToken.objects.filter(organization=membership.organization).select_related("user")
    return tokens if membership.can_manage else tokens.filter(user=membership.user)


@require_http_methods(["GET", "POST"])
def settings_tokens(request):
    membership = tenancy.require_membership(request)
    form = TokenForm(request.POST or None, can_edit=membership.can_edit)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        token, secret = ApiToken.issue(
            membership.organization, request.user, data["name"], data["scope"], data["expires_days"]
        )
        AuditEvent.record(
            membership.organization,
            request.user,
            AuditAction.TOKEN_ADDED,
            token.name,
            scope=token.scope,
            shown=token.shown,
        )
        request.session[NEW_TOKEN_KEY] = {"pk": token.pk, "secret": secret}
        return redirect("settings_tokens")
    new = request.session.pop(NEW_TOKEN_KEY, None) if request.method == "GET" else None
    new_token = ApiToken.objects.filter(pk=new["pk"], user=request.user).first() if new else None
    context = {
        "membership": membership,
        "organization": membership.organization,
        "settings_section": "tokens",
        "form": form,
        "tokens": visible_tokens(membership),
        "new_token": new_token,
        "new_secret": new["secret"] if new_token else None,
    }
    return render(request, "mailsec/settings_tokens.html", context)


@require_POST
def token_revoke(request, pk: int):
    membership = tenancy.require_membership(request)
    token = get_object_or_404(visible_tokens(membership), pk=pk)
    token.delete()
    AuditEvent.record(
        membership.organization,
        request.user,
        AuditAction.TOKEN_DELETED,
        token.name,
        shown=token.shown,
        owner=token.user.get_username(),
    )
    messages.success(request, _("Revoked the token %(name)s.") % {"name": token.name})
    return redirect("settings_tokens")
