"""Django system checks for configuration mistakes that are legal but dangerous."""

from django.conf import settings
from django.core.checks import Warning, register

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


@register()
def deployment_settings(app_configs, **kwargs):
    problems = []
    if settings.DEBUG:
        problems.append(
            Warning(
                "MAILSEC_DEBUG is on: error pages show settings and code to every visitor.",
                hint="Turn MAILSEC_DEBUG off outside development.",
                id="mailsec.W001",
            )
        )
    if settings.MAILSEC_ALLOW_PRIVATE_TARGETS:
        problems.append(
            Warning(
                "MAILSEC_ALLOW_PRIVATE_TARGETS is on: checks may connect to private, loopback "
                "and link-local addresses, which lets any user probe your internal network.",
                hint="Leave it off unless you monitor internal mail servers on purpose.",
                id="mailsec.W002",
            )
        )
    public_hosts = set(settings.ALLOWED_HOSTS) - LOCAL_HOSTS
    if public_hosts and not settings.HTTPS:
        problems.append(
            Warning(
                f"Serving {', '.join(sorted(public_hosts))} without MAILSEC_HTTPS: passwords and "
                "session cookies would cross the network in clear text.",
                hint="Put mailsec behind a TLS-terminating proxy and set MAILSEC_HTTPS=on.",
                id="mailsec.W003",
            )
        )
    if not settings.MAILSEC_ENCRYPTION_KEYS:
        problems.append(
            Warning(
                "No MAILSEC_ENCRYPTION_KEY: report mailboxes cannot be added, since their "
                "passwords are stored encrypted with it.",
                hint="Set MAILSEC_ENCRYPTION_KEY (or _FILE), or run `make run` once to generate "
                "var/encryption_key; use the same key on every machine.",
                id="mailsec.W004",
            )
        )
    return problems
