import secrets
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import UserCreationForm
from django.core.validators import URLValidator, validate_email

from domains.alerts import parse_addresses
from domains.models import AlertChannel, ChannelKind, EventKind, Membership, Organization, Role
from domains.net import refusal_reason


class SetupForm(UserCreationForm):
    """The first account: an administrator and the team they own."""

    organization = forms.CharField(
        label="Team name", max_length=100, help_text="Your company or the group of domains."
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ["username", "email"]


class TeamForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name"]
        labels = {"name": "Team name"}


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="For a new account only; an existing account keeps its password.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean(self):
        data = super().clean()
        username = data.get("username")
        if not username:
            return data
        user = get_user_model().objects.filter(username=username).first()
        if user and Membership.objects.filter(organization=self.organization, user=user).exists():
            raise forms.ValidationError(f"{username} is already a member of this team.")
        if user is None:
            if not data.get("password"):
                self.add_error("password", "A new account needs a password.")
            else:
                candidate = get_user_model()(username=username, email=data.get("email") or "")
                try:
                    password_validation.validate_password(data["password"], candidate)
                except forms.ValidationError as exc:
                    self.add_error("password", exc)
        data["user"] = user
        return data

    def save(self) -> Membership:
        user = self.cleaned_data["user"]
        if user is None:
            user = get_user_model().objects.create_user(
                username=self.cleaned_data["username"],
                email=self.cleaned_data["email"],
                password=self.cleaned_data["password"],
            )
        return Membership.objects.create(
            organization=self.organization, user=user, role=self.cleaned_data["role"]
        )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AlertPreferencesForm(forms.ModelForm):
    alert_events = forms.MultipleChoiceField(
        label="Alert on",
        choices=EventKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="New findings alert only when they are of high or critical severity.",
    )

    class Meta:
        model = Organization
        fields = ["alert_events", "alert_digest"]
        labels = {"alert_digest": "Daily digest"}
        help_texts = {
            "alert_digest": "One message a day listing the changes, instead of one per check."
        }

    def clean_alert_events(self) -> list[str]:
        chosen = set(self.cleaned_data["alert_events"])
        return [kind for kind in EventKind.values if kind in chosen]  # in a stable order


class AlertChannelForm(forms.ModelForm):
    class Meta:
        model = AlertChannel
        fields = ["kind", "name", "target"]
        labels = {"kind": "Kind", "target": "Addresses or URL"}
        help_texts = {
            "target": "E-mail: addresses separated by commas. Webhook: the http(s) URL that "
            "receives a signed JSON POST."
        }

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["kind"].choices = ChannelKind.choices  # no empty choice: e-mail first
        self.fields["kind"].initial = ChannelKind.EMAIL

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
            raise forms.ValidationError({"target": "Enter at least one e-mail address."})
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(
                    {"target": f"{address} is not a valid e-mail address."}
                ) from None
        return ", ".join(addresses)

    def _clean_url(self, url: str) -> str:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except forms.ValidationError:
            raise forms.ValidationError({"target": "Enter a valid http(s) URL."}) from None
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise forms.ValidationError(
                {"target": "Leave credentials out of the URL: the signature authenticates."}
            )
        # A name is screened when the alert is sent; a literal address can be refused now.
        try:
            reason = refusal_reason(parts.hostname or "")
        except ValueError:
            reason = None
        if reason and not settings.MAILSEC_ALLOW_PRIVATE_TARGETS:
            raise forms.ValidationError({"target": f"mailsec does not send to {reason} addresses."})
        return url

    def save(self, commit=True) -> AlertChannel:
        channel = super().save(commit=False)
        channel.organization = self.organization
        if channel.kind == ChannelKind.WEBHOOK:
            channel.secret = secrets.token_urlsafe(32)
        if commit:
            channel.save()
        return channel
