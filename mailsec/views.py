from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.defaults import page_not_found

from domains import alerts, tenancy
from domains.models import AlertChannel, AlertDelivery, ChannelKind, Membership, Organization, Role
from mailsec.accounts import invitations
from mailsec.forms import (
    AlertChannelForm,
    AlertPreferencesForm,
    InvitationForm,
    RoleForm,
    SetupForm,
    TeamForm,
    TeamSecurityForm,
)
from mailsec.ids import parse_id
from mailsec.models import AuditAction, AuditEvent, TeamSecurity


def no_user_yet() -> bool:
    return not get_user_model().objects.exists()


@login_not_required
def setup(request):
    """Create the first account and its team; gone as soon as any account exists."""
    if not no_user_yet():
        return redirect("login")
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            if not no_user_yet():  # somebody else finished the set-up meanwhile
                return redirect("login")
            user = form.save(commit=False)
            user.is_staff = user.is_superuser = True
            user.save()
            organization = Organization.objects.create(name=form.cleaned_data["organization"])
            Membership.objects.create(organization=organization, user=user, role=Role.OWNER)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to mailsec. Add the domains you want to monitor."))
        return redirect("domains:add")
    return render(request, "mailsec/setup.html", {"form": form})


@method_decorator(login_not_required, name="dispatch")
class MailsecLoginView(LoginView):
    """The login page; on a fresh database it leads to the set-up page instead."""

    def dispatch(self, request, *args, **kwargs):
        if no_user_yet():
            return redirect("setup")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        # The reset link only where mailsec can send the e-mail.
        return super().get_context_data(password_reset=bool(settings.EMAIL_HOST), **kwargs)


def home(request):
    return redirect("domains:list")


@login_not_required
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico whatever a page links (the admin's pages link none): it is
    the icon base.html links. Not permanent: the static file's name changes with its content."""
    response = redirect(static("img/favicon.svg"))
    response["Cache-Control"] = "max-age=86400"
    return response


@require_POST
def switch_team(request):
    organization_id = parse_id(request.POST.get("organization"))
    if organization_id is None:
        raise Http404("No such team.")
    membership = tenancy.select_organization(request, organization_id)
    messages.info(request, _("Now working in %(team)s.") % {"team": membership.organization})
    return redirect("domains:list")


# Settings: a page per section, with the sections' navigation (mailsec/_settings_nav.html).


@require_GET
def settings_page(request):
    """The old one-page settings address: its first section now."""
    return redirect("settings_team")


def render_settings(request, template: str, section: str, **context):
    membership = tenancy.require_membership(request)
    context = {
        "membership": membership,
        "organization": membership.organization,
        "settings_section": section,
        **context,
    }
    return render(request, template, context)


@require_GET
def settings_team(request):
    """The team's name, its members and (owners) the invitations waiting for an answer."""
    membership = tenancy.require_membership(request)
    organization = membership.organization
    return render_settings(
        request,
        "mailsec/settings_team.html",
        "team",
        members=organization.memberships.select_related("user").order_by("user__username"),
        roles=Role.choices,
        team_form=TeamForm(instance=organization),
        invitation_form=InvitationForm(),
        invitation_days=settings.MAILSEC_INVITATION_DAYS,
        invitations=invitations.pending_for(organization) if membership.can_manage else [],
        new_team_form=TeamForm(prefix="new"),
    )


@require_GET
def settings_security(request):
    """Your password and two-factor sign-in; (owners) whether the team requires it."""
    organization = tenancy.require_membership(request).organization
    required = TeamSecurity.requires_two_factor(organization)
    return render_settings(
        request,
        "mailsec/settings_security.html",
        "security",
        security_form=TeamSecurityForm(initial={"require_two_factor": required}),
    )


@require_GET
def settings_alerts(request):
    """What alerts, and where they go: the channels with their latest deliveries."""
    membership = tenancy.require_membership(request)
    organization = membership.organization
    return render_settings(
        request,
        "mailsec/settings_alerts.html",
        "alerts",
        channels=alerts.channels_for_page(organization, full_targets=membership.can_manage),
        alert_form=AlertPreferencesForm(instance=organization),
        channel_form=AlertChannelForm(organization=organization),
    )


@require_GET
def settings_mailboxes(request):
    """The report mailboxes have their page under Reports; this section leads there."""
    return render_settings(request, "mailsec/settings_mailboxes.html", "mailboxes")


@require_POST
def team_update(request):
    membership = tenancy.require_membership(request)
    tenancy.require_manage(membership)
    form = TeamForm(request.POST, instance=membership.organization)
    if form.is_valid():
        organization = form.save()
        AuditEvent.record(organization, request.user, AuditAction.TEAM_RENAMED, organization.name)
        messages.success(request, _("Team renamed."))
    else:
        messages.error(request, "; ".join(form.errors.get("name", [_("Invalid name.")])))
    return redirect("settings_team")


@require_POST
def team_create(request):
    if not request.user.is_staff:
        raise PermissionDenied(_("Only staff can create teams."))
    form = TeamForm(request.POST, prefix="new")
    if not form.is_valid():
        messages.error(request, _("Enter a name for the new team."))
        return redirect("settings_team")
    with transaction.atomic():
        organization = form.save()
        Membership.objects.create(organization=organization, user=request.user, role=Role.OWNER)
    tenancy.select_organization(request, organization.pk)
    messages.success(request, _("Created the team %(team)s.") % {"team": organization})
    return redirect("settings_team")


def _flash_errors(request, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _other_member(request, pk: int) -> Membership:
    """A membership of the current team, which the requesting owner may change."""
    membership = tenancy.require_membership(request)
    target = get_object_or_404(Membership, pk=pk, organization=membership.organization)
    tenancy.require_manage(membership)
    return target


def _would_leave_no_owner(target: Membership) -> bool:
    if target.role != Role.OWNER:
        return False
    owners = Membership.objects.filter(organization=target.organization_id, role=Role.OWNER)
    return owners.count() <= 1


@require_POST
def member_role(request, pk: int):
    target = _other_member(request, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid role."))
    elif form.cleaned_data["role"] != Role.OWNER and _would_leave_no_owner(target):
        messages.error(request, _("A team needs at least one owner."))
    else:
        target.role = form.cleaned_data["role"]
        target.save(update_fields=["role"])
        AuditEvent.record(
            target.organization,
            request.user,
            AuditAction.MEMBER_ROLE_CHANGED,
            target.user.get_username(),
            role=target.role,
        )
        messages.success(
            request,
            _("%(user)s is now %(role)s.")
            % {"user": target.user, "role": target.get_role_display().lower()},
        )
    return redirect("settings_team")


@require_POST
def member_remove(request, pk: int):
    target = _other_member(request, pk)
    if _would_leave_no_owner(target):
        messages.error(request, _("A team needs at least one owner."))
    else:
        target.delete()
        AuditEvent.record(
            target.organization,
            request.user,
            AuditAction.MEMBER_REMOVED,
            target.user.get_username(),
        )
        messages.success(request, _("Removed %(user)s from the team.") % {"user": target.user})
    return redirect("settings_team")


@require_POST
def alert_preferences(request):
    membership = tenancy.require_membership(request)
    tenancy.require_manage(membership)
    form = AlertPreferencesForm(request.POST, instance=membership.organization)
    if form.is_valid():
        organization = form.save()
        AuditEvent.record(
            organization,
            request.user,
            AuditAction.ALERTS_CHANGED,
            events=organization.alert_events,
            digest=organization.alert_digest,
        )
        messages.success(request, _("Alert preferences saved."))
    else:
        _flash_errors(request, form)
    return redirect("settings_alerts")


@require_POST
def channel_add(request):
    membership = tenancy.require_membership(request)
    tenancy.require_manage(membership)
    form = AlertChannelForm(request.POST, organization=membership.organization)
    if not form.is_valid():
        _flash_errors(request, form)
        return redirect("settings_alerts")
    channel = form.save()
    AuditEvent.record(
        channel.organization,
        request.user,
        AuditAction.CHANNEL_ADDED,
        channel.name,
        kind=channel.kind,
    )
    if channel.kind == ChannelKind.WEBHOOK:
        # The secret is shown once, on a page of its own: never in a message (a cookie).
        request.session[SECRET_SESSION_KEY] = channel.pk
        return redirect("channel_secret", pk=channel.pk)
    messages.success(request, _("Added the e-mail channel %(name)s.") % {"name": channel.name})
    return redirect("settings_alerts")


SECRET_SESSION_KEY = "show_channel_secret"


def channel_secret(request, pk: int):
    """The new webhook's signing secret, once: a reload (or anybody else) finds nothing."""
    channel = _team_channel(request, pk)
    if request.session.get(SECRET_SESSION_KEY) != channel.pk:
        raise Http404("The secret is shown only once, right after the webhook is added.")
    del request.session[SECRET_SESSION_KEY]
    return render(request, "mailsec/channel_secret.html", {"channel": channel})


def _team_channel(request, pk: int) -> AlertChannel:
    """A channel of the current team, which the requesting owner may change."""
    membership = tenancy.require_membership(request)
    channel = get_object_or_404(AlertChannel, pk=pk, organization=membership.organization)
    tenancy.require_manage(membership)
    return channel


@require_POST
def channel_enable(request, pk: int):
    channel = _team_channel(request, pk)
    alerts.enable_channel(channel)
    AuditEvent.record(channel.organization, request.user, AuditAction.CHANNEL_ENABLED, channel.name)
    messages.success(request, _("%(name)s is enabled.") % {"name": channel.name})
    return redirect("settings_alerts")


@require_POST
def channel_disable(request, pk: int):
    channel = _team_channel(request, pk)
    alerts.disable_channel(channel, by=request.user)
    AuditEvent.record(
        channel.organization, request.user, AuditAction.CHANNEL_DISABLED, channel.name
    )
    messages.success(request, _("%(name)s is disabled.") % {"name": channel.name})
    return redirect("settings_alerts")


@require_POST
def channel_delete(request, pk: int):
    channel = _team_channel(request, pk)
    channel.delete()
    AuditEvent.record(channel.organization, request.user, AuditAction.CHANNEL_DELETED, channel.name)
    messages.success(request, _("Deleted the channel %(name)s.") % {"name": channel.name})
    return redirect("settings_alerts")


@require_POST
def channel_test(request, pk: int):
    channel = _team_channel(request, pk)
    delivery = alerts.send_test(channel)
    if delivery.state == AlertDelivery.State.SENT and alerts.sent_to_log(channel):
        messages.warning(
            request,
            _(
                "Test alert to %(name)s written to the web server's log, not e-mailed: "
                "no SMTP server is configured (set MAILSEC_EMAIL_HOST)."
            )
            % {"name": channel.name},
        )
    elif delivery.state == AlertDelivery.State.SENT:
        messages.success(request, _("Test alert sent to %(name)s.") % {"name": channel.name})
    else:
        messages.error(
            request,
            _("Test alert to %(name)s failed: %(error)s")
            % {"name": channel.name, "error": delivery.last_error},
        )
    return redirect("settings_alerts")


def not_found(request, exception):
    """404: JSON under /api/ (what the API's clients and its schema expect, also for an id that
    no route matches), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
