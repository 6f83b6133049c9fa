"""API tokens from the command line, for automation: `create` prints the new token (and only
it, so a script can capture it), `list` shows the tokens, `revoke` deletes one."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from domains.models import Membership, Organization, Role
from mailsec.api.models import MAX_EXPIRY_DAYS, ApiToken, Scope
from mailsec.ids import parse_id
from mailsec.models import AuditAction, AuditEvent


class Command(BaseCommand):
    help = "Create, list or revoke API tokens."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        create = commands.add_parser("create", help="Print a new token for USER in TEAM.")
        create.add_argument("user", metavar="USER", help="A user name.")
        create.add_argument("team", metavar="TEAM", help="A team's id or name.")
        create.add_argument("--scope", choices=Scope.values, default=Scope.READ)
        create.add_argument("--expires", type=int, metavar="DAYS", help="Days until it expires.")
        create.add_argument("--name", default="command line", help="What uses it.")
        listing = commands.add_parser("list", help="The tokens (never their secrets).")
        listing.add_argument("--team", metavar="TEAM", help="Only this team's (id or name).")
        revoke = commands.add_parser("revoke", help="Delete a token: it stops working at once.")
        revoke.add_argument("token", metavar="ID", help="The id `list` shows.")

    def handle(self, *args, command, **options):
        getattr(self, command)(**options)

    def create(self, *, user, team, scope, expires, name, **_):
        account = get_user_model().objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"No user {user!r}.")
        organization = find_team(team)
        role = (
            Membership.objects.filter(user=account, organization=organization)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise CommandError(f"{user} is not a member of {organization}.")
        if scope == Scope.WRITE and not Role(role).can_edit:
            raise CommandError(f"{user} is a viewer of {organization}: the token can only read.")
        if expires is not None and not 1 <= expires <= MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires takes 1 to {MAX_EXPIRY_DAYS} days.")
        token, secret = ApiToken.issue(organization, account, name, scope, expires)
        AuditEvent.record(
            organization, account, AuditAction.TOKEN_ADDED, token.name, scope=scope, via="command"
        )
        self.stdout.write(secret)

    def list(self, *, team, **_):
        tokens = ApiToken.objects.select_related("user", "organization").order_by("id")
        if team:
            tokens = tokens.filter(organization=find_team(team))
        for token in tokens:
            expires = f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.pk}\t{token.shown}…\t{token.user}\t{token.organization}\t{token.scope}"
                f"\texpires {expires}\tused {used}\t{token.name}"
            )

    def revoke(self, *, token, **_):
        found = ApiToken.objects.filter(pk=parse_id(token)).select_related("user").first()
        if found is None:
            raise CommandError(f"No token {token}.")
        found.delete()
        AuditEvent.record(
            found.organization,
            None,
            AuditAction.TOKEN_DELETED,
            found.name,
            owner=found.user.get_username(),
            via="command",
        )
        self.stdout.write(f"Revoked token {token} ({found.name}).")


def find_team(text: str) -> Organization:
    pk = parse_id(text)
    if pk is not None and (team := Organization.objects.filter(pk=pk).first()):
        return team
    teams = list(Organization.objects.filter(name=text)[:2])
    if len(teams) != 1:
        raise CommandError(f"No team {text!r}." if not teams else f"Several teams are {text!r}.")
    return teams[0]
