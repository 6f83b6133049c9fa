from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import UserCreationForm

from domains.models import Membership, Organization, Role


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
