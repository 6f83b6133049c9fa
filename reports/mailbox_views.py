"""The report mailbox pages: the team's mailboxes and how their passes went, adding, editing and
deleting one (owners), testing its connection (owners), and "fetch now" with live progress
(owners and members; the progress partial is polled by static/js/mailsec.js like "check now").

Another team's mailbox answers 404; a viewer trying to change something gets 403.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from domains import tenancy
from domains.models import Role
from domains.views import wants_fragment
from mailsec.models import AuditAction, AuditEvent
from reports import fetch, pop3, secrets
from reports.mailbox import test_connection as test_imap_connection
from reports.mailbox_forms import MailboxForm
from reports.mailserver import ServerSettings, Step
from reports.models import Mailbox, MailboxPass, MailProtocol

TEST_TIMEOUT = 10.0  # seconds per socket operation: the test runs while the browser waits


def _load_mailbox(request, pk: int) -> tuple[Mailbox, Role]:
    mailbox = (
        Mailbox.objects.filter(pk=pk, organization__memberships__user=request.user)
        .select_related("organization")
        .first()
    )
    if mailbox is None:
        raise Http404(_("No such mailbox."))
    return mailbox, tenancy.role_for(request.user, mailbox.organization_id)


def _managed_mailbox(request, pk: int) -> Mailbox:
    mailbox, role = _load_mailbox(request, pk)
    tenancy.require_manage(role)
    return mailbox


# --- the list ---------------------------------------------------------------------------------


@dataclass
class MailboxRow:
    mailbox: Mailbox
    pending: MailboxPass | None  # a pass queued or running now
    due: bool  # enabled, and its next poll time has come


def mailbox_rows(organization, now) -> list[MailboxRow]:
    """The team's mailboxes with their last and pending passes, in two queries."""
    mailboxes = list(organization.mailboxes.select_related("last_pass"))
    pending: dict[int, MailboxPass] = {}
    passes = MailboxPass.objects.filter(fetch.in_progress(now), mailbox__in=mailboxes)
    for run in passes.order_by("created_at", "pk"):
        pending[run.mailbox_id] = run  # the latest one wins
    return [MailboxRow(m, pending.get(m.pk), is_due(m, now)) for m in mailboxes]


def is_due(mailbox: Mailbox, now) -> bool:
    return mailbox.enabled and (mailbox.next_poll_at is None or mailbox.next_poll_at <= now)


@require_GET
def mailbox_list(request):
    membership = tenancy.current_membership(request)
    rows = mailbox_rows(membership.organization, timezone.now()) if membership else []
    context = {
        "membership": membership,
        "rows": rows,
        "can_manage": bool(membership and membership.can_manage),
        "can_fetch": bool(membership and membership.can_edit),
    }
    return render(request, "reports/mailboxes.html", context)


# --- add, edit, delete (owners) ---------------------------------------------------------------


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def mailbox_add(request):
    membership = tenancy.require_membership(request)
    tenancy.require_manage(membership)
    form = MailboxForm(request.POST or None, organization=membership.organization)
    if request.method == "POST" and form.is_valid():
        mailbox = form.save()
        AuditEvent.record(
            mailbox.organization, request.user, AuditAction.MAILBOX_ADDED, mailbox.name
        )
        messages.success(
            request,
            _("Added the mailbox %(name)s. Test its connection to be sure.")
            % {"name": mailbox.name},
        )
        return redirect("reports:mailboxes")
    return render(request, "reports/mailboxes_form.html", {"form": form, "mailbox": None})


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def mailbox_edit(request, pk: int):
    mailbox = _managed_mailbox(request, pk)
    form = MailboxForm(request.POST or None, instance=mailbox, organization=mailbox.organization)
    if request.method == "POST" and form.is_valid():
        form.save()
        AuditEvent.record(
            mailbox.organization,
            request.user,
            AuditAction.MAILBOX_CHANGED,
            mailbox.name,
            fields=form.changed_data,
        )
        messages.success(request, _("Saved the mailbox %(name)s.") % {"name": mailbox.name})
        return redirect("reports:mailboxes")
    return render(request, "reports/mailboxes_form.html", {"form": form, "mailbox": mailbox})


@require_http_methods(["GET", "POST"])
def mailbox_delete(request, pk: int):
    mailbox = _managed_mailbox(request, pk)
    if request.method == "POST":
        mailbox.delete()
        AuditEvent.record(
            mailbox.organization, request.user, AuditAction.MAILBOX_DELETED, mailbox.name
        )
        messages.success(request, _("Deleted the mailbox %(name)s.") % {"name": mailbox.name})
        return redirect("reports:mailboxes")
    return render(request, "reports/mailboxes_delete.html", {"mailbox": mailbox})


# --- test connection (owners) -----------------------------------------------------------------


@sensitive_variables("password", "server")
@require_POST
def mailbox_test(request, pk: int):
    """Runs while the browser waits (each network step at most TEST_TIMEOUT seconds), so the
    owner sees at once which step failed and what the server said."""
    mailbox = _managed_mailbox(request, pk)
    context = {"mailbox": mailbox, "steps": [], "failed": None, "error": ""}
    try:
        password = secrets.decrypt(mailbox.password_encrypted)
    except secrets.SecretUnreadable as exc:
        context["error"] = str(exc)
        return render(request, "reports/mailboxes_test.html", context)
    server = ServerSettings.of(mailbox, password)
    server.timeout = TEST_TIMEOUT
    context["steps"] = CONNECTION_TESTS[mailbox.protocol](mailbox, server)
    context["failed"] = next((step for step in context["steps"] if not step.ok), None)
    return render(request, "reports/mailboxes_test.html", context)


def _test_imap(mailbox: Mailbox, server: ServerSettings) -> list[Step]:
    folders = [mailbox.folder]
    if not mailbox.read_only:
        folders += [mailbox.processed_folder, mailbox.invalid_folder]
    return test_imap_connection(server, folders, read_only=mailbox.read_only)


def _test_pop3(mailbox: Mailbox, server: ServerSettings) -> list[Step]:
    return pop3.test_connection(server)


CONNECTION_TESTS = {MailProtocol.IMAP: _test_imap, MailProtocol.POP3: _test_pop3}


# --- fetch now (owners and members) -----------------------------------------------------------


@require_POST
def mailbox_fetch(request, pk: int):
    """Queue a pass; the page then polls mailbox_pass for its progress. Refused while a pass
    of this mailbox is queued or running (the page then follows that one)."""
    mailbox, role = _load_mailbox(request, pk)
    tenancy.require_edit(role)
    now = timezone.now()
    try:
        run = fetch.request_pass(mailbox, request.user)
    except fetch.Busy as busy:
        if wants_fragment(request):
            context = _pass_context(mailbox, busy.run, now, error=busy_text(busy.run))
            return render(request, "reports/_mailbox_pass.html", context, status=429)
        messages.error(request, busy_text(busy.run))
        return redirect("reports:mailboxes")
    if wants_fragment(request):
        context = _pass_context(mailbox, run, now)
        return render(request, "reports/_mailbox_pass.html", context, status=202)
    messages.info(
        request,
        _("Fetching %(name)s is queued; reload to see how it went.") % {"name": mailbox.name},
    )
    return redirect("reports:mailboxes")


def busy_text(run) -> str:
    """fetch.Busy's reason in the reader's language (the exception's own text stays English)."""
    if run.state == "running":
        return _("A pass over this mailbox is running now: wait for it to finish.")
    return _("A pass over this mailbox is already queued: wait for it to run.")


@require_GET
def mailbox_pass(request, pk: int, pass_pk: int):
    mailbox = _load_mailbox(request, pk)[0]
    run = get_object_or_404(MailboxPass, pk=pass_pk, mailbox=mailbox)
    return render(
        request, "reports/_mailbox_pass.html", _pass_context(mailbox, run, timezone.now())
    )


@require_GET
def mailbox_facts(request, pk: int):
    """The mailbox's settings and passes (its card's facts): swapped in when a pass ends."""
    mailbox = _load_mailbox(request, pk)[0]
    row = MailboxRow(mailbox, None, is_due(mailbox, timezone.now()))
    return render(request, "reports/_mailbox_facts.html", {"mailbox": mailbox, "row": row})


def _pass_context(mailbox: Mailbox, run: MailboxPass, now, *, error: str = "") -> dict:
    going = MailboxPass.objects.filter(fetch.in_progress(now), pk=run.pk).exists()
    return {"mailbox": mailbox, "run": run, "polling": going, "error": error}
