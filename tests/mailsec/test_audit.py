"""The team's audit log: who changed what, visible to owners only, kept 400 days."""

from datetime import timedelta

from django.utils import timezone

from domains.models import AlertChannel, Domain, Membership
from mailsec.models import AuditAction, AuditEvent
from mailsec.tasks import prune_audit_log
from reports.models import Mailbox
from tests.conftest import client_for


def actions(organization) -> list[tuple[str, str, str]]:
    events = AuditEvent.objects.filter(organization=organization).order_by("at", "id")
    return [(e.actor_name, e.action, e.subject) for e in events]


def test_domains_are_audited(alice, bob, acme):
    client = client_for(bob)
    client.post("/domains/add/", {"names": "one.example\ntwo.example"})
    one = Domain.objects.get(name="one.example")
    probe_interval = str(int(one.probe_interval.total_seconds()))  # unchanged: not logged
    edited = client.post(
        f"/domains/{one.pk}/edit/",
        {"check_interval": "86400", "probe_interval": probe_interval, "notes": "n"},
    )
    assert edited.status_code == 302
    client.post(f"/domains/{one.pk}/delete/")
    logged = actions(acme)
    assert logged[:2] == [
        ("bob", "domain.added", "one.example"),
        ("bob", "domain.added", "two.example"),
    ]
    assert [a for _, a, _ in logged[2:]] == ["domain.changed", "domain.deleted"]
    changed = AuditEvent.objects.get(action="domain.changed")
    assert changed.detail == {"fields": ["check_interval", "notes"]}


def test_channels_members_and_the_team_are_audited(alice, bob, acme):
    client = client_for(alice)
    client.post("/settings/channels/add/", {"kind": "email", "name": "ops", "target": "o@x.test"})
    channel = AlertChannel.objects.get()
    client.post(f"/settings/channels/{channel.pk}/disable/")
    client.post(f"/settings/channels/{channel.pk}/enable/")
    client.post(f"/settings/channels/{channel.pk}/delete/")
    membership = Membership.objects.get(user=bob)
    client.post(f"/settings/members/{membership.pk}/role/", {"role": "viewer"})
    client.post(f"/settings/members/{membership.pk}/remove/")
    client.post("/settings/invitations/", {"email": "new@example.test", "role": "member"})
    client.post("/settings/team/", {"name": "Acme Corp"})
    assert actions(acme) == [
        ("alice", "channel.added", "ops"),
        ("alice", "channel.disabled", "ops"),
        ("alice", "channel.enabled", "ops"),
        ("alice", "channel.deleted", "ops"),
        ("alice", "member.role_changed", "bob"),
        ("alice", "member.removed", "bob"),
        ("alice", "invitation.sent", "new@example.test"),
        ("alice", "team.renamed", "Acme Corp"),
    ]


def test_mailboxes_are_audited(alice, acme):
    client = client_for(alice)
    form = {
        "name": "dmarc",
        "host": "127.0.0.1",
        "port": "993",
        "tls_mode": "implicit",
        "username": "dmarc",
        "password": "secret password",
        "folder": "INBOX",
        "interval_minutes": "60",
    }
    response = client.post("/reports/mailboxes/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    mailbox = Mailbox.objects.get()
    client.post(f"/reports/mailboxes/{mailbox.pk}/edit/", form | {"name": "reports"})
    client.post(f"/reports/mailboxes/{mailbox.pk}/delete/")
    assert [(a, s) for _, a, s in actions(acme)] == [
        ("mailbox.added", "dmarc"),
        ("mailbox.changed", "reports"),  # by its new name; the fields changed are listed
        ("mailbox.deleted", "reports"),
    ]
    assert "name" in AuditEvent.objects.get(action="mailbox.changed").detail["fields"]
    assert "secret password" not in str(list(AuditEvent.objects.values("detail")))


def test_the_log_is_for_owners_of_the_team(alice, bob, victor, acme, olga, globex):
    AuditEvent.record(acme, alice, AuditAction.DOMAIN_ADDED, "acme-secret.example")
    AuditEvent.record(globex, olga, AuditAction.DOMAIN_ADDED, "globex-secret.example")
    page = client_for(alice).get("/settings/audit/").content.decode()
    assert "acme-secret.example" in page and "globex-secret.example" not in page
    for user in (bob, victor):
        assert client_for(user).get("/settings/audit/").status_code == 403
    assert "acme-secret.example" not in client_for(olga).get("/settings/audit/").content.decode()


def test_the_log_keeps_400_days(alice, acme, settings):
    assert settings.MAILSEC_AUDIT_DAYS == 400
    now = timezone.now()
    old = AuditEvent.record(acme, alice, AuditAction.DOMAIN_ADDED, "old.example")
    kept = AuditEvent.record(acme, alice, AuditAction.DOMAIN_ADDED, "kept.example")
    AuditEvent.objects.filter(pk=old.pk).update(at=now - timedelta(days=401))
    AuditEvent.objects.filter(pk=kept.pk).update(at=now - timedelta(days=399))
    assert prune_audit_log.apply(throw=True).get() == 1
    assert list(AuditEvent.objects.values_list("subject", flat=True)) == ["kept.example"]
    assert (
        settings.CELERY_BEAT_SCHEDULE["prune-audit-log"]["task"] == "mailsec.tasks.prune_audit_log"
    )


def test_the_log_outlives_the_account(alice, acme):
    AuditEvent.record(acme, alice, AuditAction.DOMAIN_DELETED, "gone.example")
    alice.delete()
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_name == "alice"
