"""The report mailbox form: IMAP or POP3, where the server is, how to log in, which folders
to use (IMAP only: POP3 has no folders, stored messages are deleted from the server).

The password is write-only: the field never renders a value (not even when the form comes back
with errors), a blank one on edit keeps the stored password, and what is stored is the
encrypted token (reports/secrets.py), never the password itself.
"""

import contextlib
import ipaddress

import idna
from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from domains.names import LDH_LABEL, MAX_LABEL_LENGTH, MAX_NAME_LENGTH
from domains.net import refusal_reason, refusal_sentence
from reports import secrets
from reports.models import DEFAULT_PORTS, Mailbox, MailProtocol, TlsMode

PLAINTEXT_WARNING = gettext_lazy(
    "Without encryption the password and every report cross the network in the clear: anyone "
    "on the way can read them. Only for a server on this machine or a network you trust."
)
# LIST wildcards and the characters no server accepts in a folder name.
FOLDER_FORBIDDEN = set("*%\r\n\t\x00")


class MailboxForm(forms.ModelForm):
    # The page shows the fields in these groups, in this order.
    # (legend, fields, whether only IMAP uses them: static/js/mailsec.js hides those for POP3)
    GROUPS = (
        (gettext_lazy("Mailbox"), ("name", "enabled"), False),
        (
            gettext_lazy("Server"),
            ("protocol", "host", "port", "tls_mode", "allow_plaintext"),
            False,
        ),
        (gettext_lazy("Login"), ("username", "password"), False),
        (
            gettext_lazy("Folders (IMAP only)"),
            ("folder", "processed_folder", "invalid_folder"),
            True,
        ),
        (gettext_lazy("Fetching"), ("read_only", "interval_minutes"), False),
    )

    password = forms.CharField(
        label=gettext_lazy("Password"),
        required=False,
        strip=False,  # a password may begin or end with a space
        max_length=1000,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    # Text inputs with a numeric keyboard: the house style sizes text inputs, not number ones.
    port = forms.IntegerField(
        label=gettext_lazy("Port"),
        required=False,
        min_value=1,
        max_value=65535,
        help_text=gettext_lazy(
            "Blank: the usual port, 993 (TLS) or 143 for IMAP, 995 (TLS) or 110 for POP3."
        ),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}),
    )
    interval_minutes = forms.IntegerField(
        label=gettext_lazy("Poll every (minutes)"),
        min_value=1,
        max_value=1440,
        initial=5,
        help_text=gettext_lazy("From 1 to 1440 (a day)."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}),
    )

    class Meta:
        model = Mailbox
        fields = [
            "name",
            "protocol",
            "host",
            "port",
            "tls_mode",
            "allow_plaintext",
            "username",
            "folder",
            "processed_folder",
            "invalid_folder",
            "read_only",
            "interval_minutes",
            "enabled",
        ]
        labels = {
            "name": gettext_lazy("Name"),
            "protocol": gettext_lazy("Protocol"),
            "enabled": gettext_lazy("Enabled"),
            "host": gettext_lazy("Server"),
            "tls_mode": gettext_lazy("Encryption"),
            "allow_plaintext": gettext_lazy("Allow a connection without encryption"),
            "username": gettext_lazy("User name"),
            "folder": gettext_lazy("Source folder"),
            "processed_folder": gettext_lazy("Folder for processed messages"),
            "invalid_folder": gettext_lazy("Folder for unreadable messages"),
            "read_only": gettext_lazy("Read-only mode"),
        }
        help_texts = {
            "name": gettext_lazy("For you: shown on the mailbox list."),
            "protocol": gettext_lazy(
                "IMAP files stored messages away in folders. POP3 has no folders: "
                "stored messages are deleted from the server (unless in read-only mode)."
            ),
            "host": gettext_lazy(
                "A host name such as imap.example.com or pop.example.com, or an IP address; "
                "no https://, no path, no port."
            ),
            "allow_plaintext": PLAINTEXT_WARNING,
            "folder": gettext_lazy(
                "IMAP only. Where the reports arrive, usually INBOX. Use / between folder levels."
            ),
            "processed_folder": gettext_lazy(
                "IMAP only. Messages are moved here once stored (created if missing). Blank: "
                "they stay in the source folder."
            ),
            "invalid_folder": gettext_lazy(
                "IMAP only. Messages that are not (wholly) readable reports are moved here. "
                "Blank: they stay in the source folder."
            ),
            "read_only": gettext_lazy(
                "Never change the mailbox: messages stay where they are (over IMAP the folders "
                "for processed and unreadable messages are not used, over POP3 nothing is "
                "deleted); mailsec remembers what it has fetched."
            ),
        }

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.adding = self.instance.pk is None
        password = self.fields["password"]
        password.required = self.adding
        password.help_text = (
            _("Stored encrypted, and never shown again.")
            if self.adding
            else _(
                "Leave blank to keep the stored password. It is stored encrypted and never shown."
            )
        )
        self.fields["tls_mode"].choices = TlsMode.choices  # no empty choice
        self.fields["protocol"].choices = MailProtocol.choices
        self.fields["protocol"].required = False  # absent: IMAP, as before POP3 was offered
        self.fields["protocol"].widget.attrs["data-protocol"] = ""
        self.fields["folder"].required = False  # for IMAP only: see clean()

    def groups(self) -> list[tuple[str, list[forms.BoundField], bool]]:
        """(legend, fields, whether only IMAP uses them) of each group."""
        return [
            (legend, [self[name] for name in names], imap_only)
            for legend, names, imap_only in self.GROUPS
        ]

    # --- cleaning --------------------------------------------------------------------------

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Mailbox.objects.filter(organization=self.organization, name__iexact=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(
                _("The team already has a mailbox called %(name)s.") % {"name": name}
            )
        return name

    def clean_protocol(self) -> str:
        return self.cleaned_data.get("protocol") or MailProtocol.IMAP

    def clean_host(self) -> str:
        return clean_host(self.cleaned_data["host"])

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if not username:
            raise forms.ValidationError(_("Enter the user name of the mailbox."))
        return username

    def clean_folder(self) -> str:
        return clean_folder(self.cleaned_data["folder"])

    def clean_processed_folder(self) -> str:
        return clean_folder(self.cleaned_data["processed_folder"])

    def clean_invalid_folder(self) -> str:
        return clean_folder(self.cleaned_data["invalid_folder"])

    def clean(self):
        data = super().clean()
        if data.get("tls_mode") == TlsMode.PLAIN:
            if not data.get("allow_plaintext"):
                self.add_error(
                    "allow_plaintext",
                    _(
                        "Without encryption the password would be sent in the clear: tick this "
                        "box to allow it, or choose TLS or STARTTLS."
                    ),
                )
        else:
            # The consent belongs to the choice of no encryption; a later switch asks again.
            data["allow_plaintext"] = False
        protocol, mode = data.get("protocol"), data.get("tls_mode")
        if data.get("port") is None and protocol in DEFAULT_PORTS and mode in TlsMode.values:
            data["port"] = DEFAULT_PORTS[protocol][mode]
        self._check_port_fits(data.get("port"), protocol)
        if protocol == MailProtocol.POP3:
            data["folder"] = data.get("folder") or "INBOX"  # not used: POP3 has no folders
        elif "folder" in data and not data["folder"]:
            self.add_error("folder", self.fields["folder"].error_messages["required"])
        elif not data.get("read_only"):
            self._check_distinct_folders(data)
        return data

    def _check_port_fits(self, port, protocol) -> None:
        """The other protocol's usual port is a slip (say, IMAP switched to POP3 on edit)."""
        if protocol not in DEFAULT_PORTS:
            return
        for other, ports in DEFAULT_PORTS.items():
            if other != protocol and port in ports.values():
                usual = DEFAULT_PORTS[protocol]
                self.add_error(
                    "port",
                    _(
                        "%(port)s is the usual %(other)s port: for %(protocol)s use "
                        "%(tls_port)s (TLS) or %(starttls_port)s, or leave it blank."
                    )
                    % {
                        "port": port,
                        "other": MailProtocol(other).label,
                        "protocol": MailProtocol(protocol).label,
                        "tls_port": usual[TlsMode.IMPLICIT],
                        "starttls_port": usual[TlsMode.STARTTLS],
                    },
                )

    def _check_distinct_folders(self, data) -> None:
        source = data.get("folder")
        if not source:
            return
        for name in ("processed_folder", "invalid_folder"):
            target = data.get(name)
            if target and _same_folder(target, source):
                self.add_error(
                    name,
                    _(
                        "This is the source folder: choose another folder, leave it blank, or "
                        "use read-only mode."
                    ),
                )

    def save(self, commit=True) -> Mailbox:
        mailbox = super().save(commit=False)
        mailbox.organization = self.organization
        password = self.cleaned_data.get("password")
        if password:
            mailbox.password_encrypted = secrets.encrypt(password)
        if commit:
            mailbox.save()
        return mailbox


def clean_host(raw: str) -> str:
    """A host name (stored as its A-label form) or an IP address, or ValidationError."""
    text = raw.strip()
    if "://" in text or "/" in text:
        raise forms.ValidationError(_("Enter the server's name only, not a URL or a path."))
    if "@" in text:
        raise forms.ValidationError(_("Enter the server's name, not an e-mail address."))
    if any(ch.isspace() for ch in text):
        raise forms.ValidationError(_("A host name cannot contain spaces."))
    address = _ip_address(text)
    if address:
        _refuse_private(address)
        return address
    if ":" in text:
        raise forms.ValidationError(_("Enter the port in the port field, not after the host name."))
    name = text.lower().removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise forms.ValidationError(
                _("%(host)s is not a valid host name: %(reason)s") % {"host": text, "reason": exc}
            ) from None
    labels = name.split(".")
    bad = [label for label in labels if len(label) > MAX_LABEL_LENGTH or not LDH_LABEL.match(label)]
    if bad or len(name) > MAX_NAME_LENGTH:
        raise forms.ValidationError(
            _("%(host)s is not a valid host name: use letters, digits, hyphens and dots.")
            % {"host": text}
        )
    return name


def _ip_address(text: str) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    return ""


def _refuse_private(address: str) -> None:
    # A name is screened when mailsec connects; a literal address can be refused now.
    reason = refusal_reason(address)
    if reason and not settings.MAILSEC_ALLOW_PRIVATE_TARGETS:
        raise forms.ValidationError(refusal_sentence(reason))


def clean_folder(raw: str, *, required: bool = False) -> str:
    name = raw.strip()
    if not name:
        if required:
            raise forms.ValidationError(_("Enter a folder name, such as INBOX."))
        return ""
    if FOLDER_FORBIDDEN & set(name):
        raise forms.ValidationError(
            _("A folder name cannot contain *, %% or control characters.") % {}
        )
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise forms.ValidationError(
            _(
                "Use / only between folder levels, as in dmarc/processed (no leading, trailing "
                "or double /)."
            )
        )
    return name


def _same_folder(a: str, b: str) -> bool:
    # INBOX is case-insensitive in IMAP (RFC 3501 5.1), every other name is not.
    def key(name: str) -> str:
        head, sep, rest = name.partition("/")
        return (head.upper() if head.upper() == "INBOX" else head) + sep + rest

    return key(a) == key(b)
