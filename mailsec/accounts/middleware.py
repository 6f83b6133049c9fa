"""Request gates of the accounts: no caching of signed-in pages, and the second factor."""

from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from mailsec.accounts import two_factor


class NoStoreMiddleware:
    """Pages of a signed-in user never go into a browser's or a proxy's cache, where the next
    user of a shared machine (or the proxy's other clients) could read them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


# Reachable by a signed-in user who still owes the second factor.
PENDING_ALLOWED = {"logout", "healthz", "two_factor_verify"}
# Reachable by a user whose team requires two-factor sign-in before they have enrolled.
ENROLMENT_ALLOWED = {"logout", "healthz", "two_factor", "two_factor_enrol", "two_factor_codes"}


class TwoFactorMiddleware:
    """A user with a second factor has signed in only once they have given it; a user whose
    team requires one and who has none is sent to enrol. Runs for every view, the admin's too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        name = request.resolver_match.url_name if request.resolver_match else None
        has_device, required = two_factor.gate_state(user)
        if has_device:
            if name in PENDING_ALLOWED:
                return None
            return redirect(_with_next("two_factor_verify", request))
        if name in ENROLMENT_ALLOWED or not required:
            return None
        return redirect("two_factor")


def _with_next(view_name: str, request) -> str:
    url = reverse(view_name)
    if request.method == "GET":
        url += "?" + urlencode({"next": request.get_full_path()})
    return url
