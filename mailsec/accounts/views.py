"""Pages of the accounts: two-factor sign-in, invitations, the team's sign-in policy and audit
log, and the password reset (only when mailsec can send e-mail)."""

import hashlib
from functools import wraps

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.throttling import SimpleRateThrottle

from domains import tenancy
from mailsec.accounts import invitations, locale, two_factor
from mailsec.forms import (
    CodeForm,
    InvitationForm,
    InvitedAccountForm,
    LanguageForm,
    PreferencesForm,
    TeamSecurityForm,
)
from mailsec.models import AuditAction, AuditEvent, Invitation, Profile, TeamSecurity

CODES_SESSION_KEY = "show_recovery_codes"
LINK_SESSION_KEY = "show_invitation_link"


# --- two-factor sign-in -------------------------------------------------------------------


def two_factor_page(request):
    """The user's second factor: set it up, see how many recovery codes are left, remove it."""
    user = request.user
    pending = None if two_factor.has_device(user) else two_factor.pending_device(user)
    context = {
        "enabled": two_factor.has_device(user),
        "required": two_factor.required(user),
        "codes_left": two_factor.recovery_codes_left(user),
        "pending": pending,
        "form": CodeForm(),
    }
    if pending is not None:
        context["qr_code"] = two_factor.qr_code_svg(pending)
        context["secret"] = two_factor.secret_for_typing(pending)
    return render(request, "mailsec/two_factor.html", context)


@require_POST
def two_factor_enrol(request):
    """Without a code: start (or restart) the set-up. With one: confirm the authenticator."""
    if two_factor.has_device(request.user):
        messages.info(request, _("Two-factor sign-in is already on."))
        return redirect("two_factor")
    pending = two_factor.pending_device(request.user)
    if "code" not in request.POST or pending is None:
        two_factor.start_enrolment(request.user)
        return redirect("two_factor")
    form = CodeForm(request.POST)
    codes = (
        two_factor.confirm(request, pending, form.data.get("code", "")) if form.is_valid() else None
    )
    if codes is None:
        messages.error(request, _("That code is not right: try the one your app shows now."))
        return redirect("two_factor")
    request.session[CODES_SESSION_KEY] = codes
    messages.success(request, _("Two-factor sign-in is on."))
    return redirect("two_factor_codes")


def two_factor_codes(request):
    """GET: the new recovery codes, once. POST: replace them with new ones."""
    if request.method == "POST":
        if not two_factor.has_device(request.user):
            raise Http404("Two-factor sign-in is off.")
        request.session[CODES_SESSION_KEY] = two_factor.new_recovery_codes(request.user)
        return redirect("two_factor_codes")
    codes = request.session.pop(CODES_SESSION_KEY, None)
    if codes is None:
        return redirect("two_factor")
    return render(request, "mailsec/recovery_codes.html", {"codes": codes})


@require_POST
def two_factor_disable(request):
    if two_factor.required(request.user):
        messages.error(request, _("A team of yours requires two-factor sign-in: it stays on."))
    else:
        two_factor.disable(request.user)
        messages.success(request, _("Two-factor sign-in is off."))
    return redirect("two_factor")


def two_factor_verify(request):
    """The second step of signing in, for users with a second factor."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    if not two_factor.has_device(request.user) or request.user.is_verified():
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if two_factor.verify(request, form.cleaned_data["code"]):
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
        form.add_error("code", _("That code is not right (or it was used already)."))
    return render(request, "mailsec/two_factor_verify.html", {"form": form, "next": next_url})


# --- the team: sign-in policy, invitations, audit log ------------------------------------


def _owner_membership(request):
    membership = tenancy.require_membership(request)
    tenancy.require_manage(membership)
    return membership


@require_POST
def team_security(request):
    membership = _owner_membership(request)
    form = TeamSecurityForm(request.POST)
    required = form.is_valid() and form.cleaned_data["require_two_factor"]
    if required and not two_factor.has_device(request.user):
        messages.error(request, _("Turn on two-factor sign-in for yourself first."))
        return redirect("settings_security")
    organization = membership.organization
    if TeamSecurity.set_required(organization, required):
        action = AuditAction.TWO_FACTOR_REQUIRED if required else AuditAction.TWO_FACTOR_OPTIONAL
        AuditEvent.record(organization, request.user, action)
    messages.success(
        request,
        _("Two-factor sign-in is required in this team.")
        if required
        else _("Two-factor sign-in is optional in this team."),
    )
    return redirect("settings_security")


@require_POST
def invitation_create(request):
    membership = _owner_membership(request)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("settings_team")
    invitation, link, mailed = invitations.invite(
        request, membership.organization, form.cleaned_data["email"], form.cleaned_data["role"]
    )
    # The link is shown once, on a page of its own: never in a message (a cookie).
    request.session[LINK_SESSION_KEY] = {"pk": invitation.pk, "link": link, "mailed": mailed}
    return redirect("invitation_link", pk=invitation.pk)


def invitation_link(request, pk: int):
    membership = _owner_membership(request)
    invitation = get_object_or_404(Invitation, pk=pk, organization=membership.organization)
    shown = request.session.get(LINK_SESSION_KEY) or {}
    if shown.get("pk") != invitation.pk:
        raise Http404("The link is shown only once, right after the invitation is made.")
    del request.session[LINK_SESSION_KEY]
    context = {"invitation": invitation, "link": shown["link"], "mailed": shown["mailed"]}
    return render(request, "mailsec/invitation_link.html", context)


@require_POST
def invitation_revoke(request, pk: int):
    membership = _owner_membership(request)
    invitation = get_object_or_404(
        Invitation.objects.pending(), pk=pk, organization=membership.organization
    )
    invitations.revoke(request, invitation)
    messages.success(
        request, _("Revoked the invitation of %(email)s.") % {"email": invitation.email}
    )
    return redirect("settings_team")


@login_not_required
def invitation(request, token: str):
    """Where an invitation link leads: join with the account you are signed in with, or make
    one. A used, revoked or expired link says only that it is no longer valid."""
    found = Invitation.find(token)
    if found is None:
        return render(request, "mailsec/invitation_invalid.html", status=404)
    if request.user.is_authenticated:
        if request.method == "POST":
            return _joined(request, found, request.user)
        return render(request, "mailsec/invitation.html", {"invitation": found})
    form = InvitedAccountForm(request.POST or None, initial={"email": found.email})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            if invitations.accept(request, found, user) is None:
                transaction.set_rollback(True)
                return render(request, "mailsec/invitation_invalid.html", status=404)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return _welcome(request, found)
    return render(request, "mailsec/invitation.html", {"invitation": found, "form": form})


def _joined(request, found: Invitation, user):
    if invitations.accept(request, found, user) is None:
        return render(request, "mailsec/invitation_invalid.html", status=404)
    return _welcome(request, found)


def _welcome(request, found: Invitation):
    tenancy.select_organization(request, found.organization_id)
    messages.success(request, _("Welcome to %(team)s.") % {"team": found.organization})
    return redirect("domains:list")


def audit_log(request):
    membership = _owner_membership(request)
    events = AuditEvent.objects.filter(organization=membership.organization).select_related("actor")
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "mailsec/audit.html",
        {
            "membership": membership,
            "organization": membership.organization,
            "settings_section": "audit",
            "page": page,
            "days": settings.MAILSEC_AUDIT_DAYS,
        },
    )


# --- password reset, when mailsec can send e-mail ----------------------------------------


def needs_email(view):
    """The page exists only when an SMTP server is configured (MAILSEC_EMAIL_HOST)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.EMAIL_HOST:
            raise Http404("Password reset needs an SMTP server (MAILSEC_EMAIL_HOST).")
        return view(request, *args, **kwargs)

    return login_not_required(wrapped)


class ResetThrottle(SimpleRateThrottle):
    """MAILSEC_PASSWORD_RESET_RATE reset e-mails an hour for one identity (a client address, or
    a hash of the e-mail address asked about), counted in the cache every web process shares."""

    scope = "password_reset"

    def __init__(self, identity: str):
        self.identity = identity
        super().__init__()

    def get_rate(self):
        return f"{settings.MAILSEC_PASSWORD_RESET_RATE}/hour"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.identity}


def reset_identities(request, email: str) -> tuple[str, str]:
    """Whom a reset request is counted against: its client (as the login lockout sees it,
    proxies included) and the address it asks about (hashed: no address in the cache)."""
    address = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"client:{get_client_ip_address(request)}", f"address:{address}"


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset, with a limit: a client asking too often gets a 429; an address asked
    about too often gets no more e-mail, and the page says the same as ever (it never tells
    whether the address has an account)."""

    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form):
        client, address = reset_identities(self.request, form.cleaned_data["email"])
        if not ResetThrottle(client).allow_request(self.request, None):
            form.add_error(
                None, _("Too many password reset requests from your address: try again later.")
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        if not ResetThrottle(address).allow_request(self.request, None):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


password_reset = needs_email(ThrottledPasswordResetView.as_view())
password_reset_done = needs_email(auth_views.PasswordResetDoneView.as_view())
password_reset_confirm = needs_email(auth_views.PasswordResetConfirmView.as_view())
password_reset_complete = needs_email(auth_views.PasswordResetCompleteView.as_view())


# --- language and time zone ---------------------------------------------------------------


@require_GET
def preferences(request):
    profile = Profile.objects.filter(user=request.user).first()
    initial = {"language": profile.language, "time_zone": profile.time_zone} if profile else {}
    return _preferences_page(request, PreferencesForm(initial=initial))


def _preferences_page(request, form):
    from mailsec.views import render_settings  # mailsec.views imports this module

    return render_settings(
        request, "mailsec/settings_preferences.html", "preferences", preferences_form=form
    )


@require_POST
def preferences_save(request):
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        return _preferences_page(request, form)
    language, time_zone = form.cleaned_data["language"], form.cleaned_data["time_zone"]
    Profile.objects.update_or_create(
        user=request.user, defaults={"language": language, "time_zone": time_zone}
    )
    locale.remember(request.session, language=language, time_zone=time_zone)
    translation.activate(language or translation.get_language_from_request(request))
    messages.success(request, _("Your preferences are saved."))
    response = redirect("settings_preferences")
    _language_cookie(response, language)
    return response


@login_not_required
@require_POST
def set_language(request):
    """The footer's switcher: for everybody a cookie, for a signed-in user their profile too."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Unknown language."))
    language = form.cleaned_data["language"]
    target = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    if request.user.is_authenticated:
        Profile.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[locale.LANGUAGE_KEY] = language
    response = HttpResponseRedirect(target)
    _language_cookie(response, language)
    return response


def _language_cookie(response, language: str) -> None:
    if not language:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=365 * 24 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
