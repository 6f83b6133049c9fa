"""Inviting people into a team: a one-time, expiring link, e-mailed when an SMTP server is
configured and shown once to the owner who made it (to pass on when it is not)."""

import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from mailsec.models import AuditAction, AuditEvent, Invitation

log = logging.getLogger(__name__)


def pending_for(organization):
    return Invitation.objects.pending().filter(organization=organization)


def invitation_link(request, token: str) -> str:
    path = reverse("invitation", args=[token])
    if settings.MAILSEC_SITE_URL:
        return settings.MAILSEC_SITE_URL + path
    return request.build_absolute_uri(path)


def invite(request, organization, email: str, role: str) -> tuple[Invitation, str, bool]:
    """Make the invitation; returns it, its link, and whether it was e-mailed."""
    invitation, token = Invitation.issue(organization, email, role, by=request.user)
    link = invitation_link(request, token)
    AuditEvent.record(organization, request.user, AuditAction.INVITATION_SENT, email, role=role)
    return invitation, link, _send(invitation, link, request.user)


def _send(invitation: Invitation, link: str, by) -> bool:
    if not settings.EMAIL_HOST:
        return False
    context = {"invitation": invitation, "link": link, "by": by}
    try:
        send_mail(
            _("You are invited to %(team)s on mailsec") % {"team": invitation.organization},
            render_to_string("mailsec/invitation_email.txt", context),
            None,
            [invitation.email],
        )
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("could not e-mail the invitation %s: %s", invitation.pk, exc)
        return False
    return True


def revoke(request, invitation: Invitation) -> None:
    invitation.delete()
    AuditEvent.record(
        invitation.organization, request.user, AuditAction.INVITATION_REVOKED, invitation.email
    )


def accept(request, invitation: Invitation, user):
    """The membership the invitation gives the user, or None when it was used meanwhile."""
    membership = invitation.accept(user)
    if membership is not None:
        AuditEvent.record(
            invitation.organization,
            user,
            AuditAction.MEMBER_JOINED,
            user.get_username(),
            role=membership.role,
            invited_as=invitation.email,
        )
    return membership
