import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from reports import fetch
from reports.models import Mailbox, MailboxPass

BAR = 30


class Command(BaseCommand):
    help = "Fetch DMARC and TLS reports from the configured mailboxes now: one pass each."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", type=int, metavar="ID", help="only this mailbox")

    def handle(self, *args, **options):
        mailboxes = Mailbox.objects.order_by("pk")
        if options["mailbox"] is not None:
            mailboxes = mailboxes.filter(pk=options["mailbox"])
            if not mailboxes.exists():
                raise CommandError(f"No mailbox with id {options['mailbox']}.")
        else:
            mailboxes = mailboxes.filter(enabled=True)
        failed = 0
        for mailbox in mailboxes:
            run = fetch.run_pass(mailbox.pk, trigger="command", progress=self._bar(mailbox))
            if self._interactive():
                sys.stderr.write("\n")  # past the progress bar
            self.stdout.write(self._summary(mailbox, run))
            failed += run.state == MailboxPass.State.FAILED
        if failed:
            raise SystemExit(1)

    @staticmethod
    def _interactive() -> bool:
        return sys.stderr.isatty()

    def _bar(self, mailbox):
        def show(run: MailboxPass) -> None:
            if not self._interactive():
                return
            done = run.fetched
            filled = BAR * done // run.total if run.total else BAR
            sys.stderr.write(
                f"\r{mailbox.name}: [{'#' * filled}{'.' * (BAR - filled)}] "
                f"{done}/{run.total} {ngettext('message', 'messages', run.total)}, "
                f"{run.imported} imported, {run.duplicates} "
                f"{ngettext('duplicate', 'duplicates', run.duplicates)}, {run.invalid} invalid"
            )
            sys.stderr.flush()

        return show

    @staticmethod
    def _summary(mailbox: Mailbox, run: MailboxPass) -> str:
        if run.state == MailboxPass.State.SKIPPED:
            return f"{mailbox.name}: skipped, another pass is working on this mailbox"
        line = (
            f"{mailbox.name}: {run.state}, {run.fetched} of {run.total} new "
            f"{ngettext('message', 'messages', run.total)}: {run.imported} "
            f"{ngettext('report', 'reports', run.imported)} imported, {run.duplicates} "
            f"{ngettext('duplicate', 'duplicates', run.duplicates)}, {run.invalid} invalid"
        )
        return line + (f"; error: {run.error}" if run.error else "")
