"""Two-factor sign-in with django-otp: one authenticator app (TOTP) per user, and ten
single-use recovery codes for the day the phone is lost.

A session that has passed the password but not the second factor is held at the verify page
by TwoFactorMiddleware; django-otp marks the session verified (`request.user.is_verified()`)
once a code is accepted. Both kinds of device throttle wrong codes (the wait doubles with each).
"""

from base64 import b32encode

import segno
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp import verify_token as otp_verify_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from mailsec.models import TeamSecurity

RECOVERY_CODES = 10
AUTHENTICATOR = "Authenticator app"
RECOVERY = "Recovery codes"


def has_device(user) -> bool:
    return user_has_device(user, confirmed=True)


def gate_state(user) -> tuple[bool, bool]:
    """(has a second factor, a team of theirs requires one), in one query: asked on every
    request of a signed-in user whose session has not given a second factor."""
    teams = TeamSecurity.objects.filter(
        require_two_factor=True, organization__memberships__user=OuterRef("pk")
    )
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .values_list(
            Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True))
            | Exists(StaticDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            Exists(teams),
        )
        .first()
    )
    return (bool(row[0]), bool(row[1])) if row else (False, False)


def required(user) -> bool:
    """Whether a team of the user requires two-factor sign-in."""
    return TeamSecurity.required_for_user(user)


def start_enrolment(user) -> TOTPDevice:
    """A fresh, unconfirmed authenticator (replacing one that was never confirmed)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=AUTHENTICATOR, confirmed=False)


def pending_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def qr_code_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code for the authenticator app to scan."""
    return segno.make(device.config_url).svg_inline(
        scale=4, light="#fff", title="QR code for your authenticator app"
    )


def secret_for_typing(device: TOTPDevice) -> str:
    """The key in base32 (what apps accept when the QR code cannot be scanned), in groups."""
    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def confirm(request, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the authenticator with a code it shows; the new recovery codes, or None when the
    code is wrong. The session counts as verified from now on."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(_digits(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    codes = new_recovery_codes(request.user)
    otp_login(request, device)
    return codes


def new_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes with ten new ones (each works once)."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=RECOVERY, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def verify(request, code: str) -> bool:
    """Check a code from the authenticator (six digits) or a recovery code (used up by this),
    and mark the session verified when it is right."""
    code = code.strip().replace(" ", "").lower()
    digits = _digits(code)
    for device in devices_for_user(request.user, confirmed=True):
        is_totp = isinstance(device, TOTPDevice)
        # Ask only the device the code is for, so a typo does not throttle the other one.
        if is_totp != (digits.isdigit() and len(digits) == device_digits(device)):
            continue
        verified = otp_verify_token(request.user, device.persistent_id, digits if is_totp else code)
        if verified is not None:
            otp_login(request, verified)
            return True
    return False


def device_digits(device) -> int:
    return getattr(device, "digits", 0)


def disable(user) -> None:
    """Remove the authenticator and the recovery codes."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()


def _digits(code: str) -> str:
    return code.strip().replace(" ", "").replace("-", "")
