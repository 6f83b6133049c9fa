"""A gate for every request: no NUL character in the query string.

PostgreSQL cannot store or compare a string holding NUL (psycopg refuses it, a 500), and no
name, address or date mailsec takes has one. Forms and the API's fields refuse it in posted
data already; this refuses it in the query parameters that pages and API lists filter by,
before any view runs. Schemathesis found it (a TLS report list filtered by such a domain).
"""

from django.http import HttpResponseBadRequest, JsonResponse

MESSAGE = "Query parameters may not contain NUL characters."


class RefuseNulQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": MESSAGE}, status=400)
            return HttpResponseBadRequest(MESSAGE)
        return self.get_response(request)
