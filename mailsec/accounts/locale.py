"""The language and time zone of a request: the user's choice, else the browser's.

A signed-in user's choice lives on their Profile and is copied into the session at sign-in and
whenever they change it, so that no request pays a query for it. Without a choice, Django's
LocaleMiddleware decides (the language cookie set by the footer's switcher, then
Accept-Language). URLs never carry the language.
"""

import zoneinfo
from functools import cache

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation

LANGUAGE_KEY = "mailsec_language"
TIME_ZONE_KEY = "mailsec_time_zone"


@cache
def time_zones() -> list[str]:
    """The IANA zones a user may choose (the system's or the tzdata package's database)."""
    return sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC")


def known_language(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def known_time_zone(name: str) -> bool:
    return name in time_zones()


def remember(session, *, language: str, time_zone: str) -> None:
    """Keep a user's choices in their session (an empty choice removes it)."""
    for key, value in ((LANGUAGE_KEY, language), (TIME_ZONE_KEY, time_zone)):
        if value:
            session[key] = value
        else:
            session.pop(key, None)


class UserLocaleMiddleware(LocaleMiddleware):
    """LocaleMiddleware, but a signed-in user's own choice comes first; the time zone too."""

    def process_request(self, request):
        chosen = request.session.get(LANGUAGE_KEY, "")
        if known_language(chosen):
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()
        else:
            super().process_request(request)
        zone = request.session.get(TIME_ZONE_KEY, "")
        if known_time_zone(zone):
            timezone.activate(zoneinfo.ZoneInfo(zone))
        else:
            timezone.deactivate()
