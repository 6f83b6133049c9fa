import secrets
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import URLValidator, validate_email
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from domains.alerts import parse_addresses
from domains.models import AlertChannel, ChannelKind, EventKind, Organization, Role
from domains.net import refusal_reason, refusal_sentence


class SetupForm(UserCreationForm):
    """The first account: an administrator and the team they own."""

    organization = forms.CharField(
        label=gettext_lazy("Team name"),
        max_length=100,
        help_text=gettext_lazy("Your company or the group of domains."),
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ["username", "email"]


class TeamForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name"]
        labels = {"name": gettext_lazy("Team name")}


class InvitationForm(forms.Form):
    """Invite somebody by address: no account is looked up, so nothing tells whether one
    exists; the invitee accepts with the account they have, or makes one."""

    email = forms.EmailField(label=gettext_lazy("E-mail address"), max_length=254)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices, initial=Role.MEMBER)


class TeamSecurityForm(forms.Form):
    require_two_factor = forms.BooleanField(
        label=gettext_lazy("Require two-factor sign-in"),
        required=False,
        help_text=gettext_lazy(
            "Members without an authenticator app are asked to set one up before they "
            "can do anything else."
        ),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class InvitedAccountForm(UserCreationForm):
    """The account an invitee makes with the invitation link."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ["username", "email"]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AlertPreferencesForm(forms.ModelForm):
    alert_events = forms.MultipleChoiceField(
        label=gettext_lazy("Alert on"),
        choices=EventKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "New findings alert only when they are of high or critical severity."
        ),
    )

    class Meta:
        model = Organization
        fields = ["alert_events", "alert_digest"]
        labels = {"alert_digest": gettext_lazy("Daily digest")}
        help_texts = {
            "alert_digest": gettext_lazy(
                "One message a day listing the changes, instead of one per check."
            )
        }

    def clean_alert_events(self) -> list[str]:
        chosen = set(self.cleaned_data["alert_events"])
        return [kind for kind in EventKind.values if kind in chosen]  # in a stable order


class AlertChannelForm(forms.ModelForm):
    class Meta:
        model = AlertChannel
        fields = ["kind", "name", "target", "language"]
        labels = {
            "kind": gettext_lazy("Kind"),
            "name": gettext_lazy("Name"),
            "target": gettext_lazy("Addresses or URL"),
            "language": gettext_lazy("Language"),
        }
        help_texts = {
            "target": gettext_lazy(
                "E-mail: addresses separated by commas. Webhook: the http(s) URL that "
                "receives a signed JSON POST."
            )
        }

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["kind"].choices = ChannelKind.choices  # no empty choice: e-mail first
        self.fields["kind"].initial = ChannelKind.EMAIL
        # E-mail alerts are written in the language of whoever adds the channel, unless chosen.
        self.fields["language"].initial = (translation.get_language() or "en").split("-")[0]
        self.fields["language"].required = False  # left out (an older client): that language

    def clean_language(self) -> str:
        return self.cleaned_data["language"] or self.fields["language"].initial

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if not target:
            return data
        if data.get("kind") == ChannelKind.EMAIL:
            data["target"] = self._clean_addresses(target)
        elif data.get("kind") == ChannelKind.WEBHOOK:
            data["target"] = self._clean_url(target.strip())
        return data

    def _clean_addresses(self, target: str) -> str:
        addresses = parse_addresses(target)
        if not addresses:
            raise forms.ValidationError({"target": _("Enter at least one e-mail address.")})
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(
                    {
                        "target": _("%(address)s is not a valid e-mail address.")
                        % {"address": address}
                    }
                ) from None
        return ", ".join(addresses)

    def _clean_url(self, url: str) -> str:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except forms.ValidationError:
            raise forms.ValidationError({"target": _("Enter a valid http(s) URL.")}) from None
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError(
                {"target": _("Leave credentials out of the URL: the signature authenticates.")}
            )
        # A name is screened when the alert is sent; a literal address can be refused now.
        try:
            reason = refusal_reason(parts.hostname or "")
        except ValueError:
            reason = None
        if reason and not settings.MAILSEC_ALLOW_PRIVATE_TARGETS:
            raise forms.ValidationError({"target": refusal_sentence(reason, sending=True)})
        return url

    def save(self, commit=True) -> AlertChannel:
        channel = super().save(commit=False)
        channel.organization = self.organization
        if channel.kind == ChannelKind.WEBHOOK:
            channel.secret = secrets.token_urlsafe(32)
        if commit:
            channel.save()
        return channel


class PreferencesForm(forms.Form):
    """A user's own language and time zone (mailsec/accounts/locale.py applies them)."""

    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        help_text=gettext_lazy("Empty: the language your browser asks for."),
    )
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"), required=False, help_text=gettext_lazy("Empty: UTC.")
    )

    def __init__(self, *args, **kwargs):
        from mailsec.accounts.locale import time_zones

        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [("", _("Your browser's")), *settings.LANGUAGES]
        self.fields["time_zone"].choices = [("", "UTC"), *((z, z) for z in time_zones())]


class LanguageForm(forms.Form):
    """The footer's switcher: a language and where to go back to."""

    language = forms.ChoiceField(choices=settings.LANGUAGES)
    next = forms.CharField(required=False, max_length=2000)
