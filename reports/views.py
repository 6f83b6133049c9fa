from django.shortcuts import render

from domains import tenancy


def report_index(request):
    membership = tenancy.current_membership(request)
    return render(request, "reports/index.html", {"membership": membership})
