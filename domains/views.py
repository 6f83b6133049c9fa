from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from domains import pages, tenancy
from domains.bulk import add_domains
from domains.forms import DomainAddForm, DomainEditForm
from domains.models import Domain, ManualCheck, Role
from mailsec.models import AuditAction, AuditEvent

# Sent by static/js/mailsec.js: answer with the partial to swap in, not a redirect.
FRAGMENT_HEADER = "X-Mailsec-Fragment"


def wants_fragment(request) -> bool:
    return request.headers.get(FRAGMENT_HEADER) == "1"


def _load_domain(request, pk: int, *, edit: bool = False, related=()) -> tuple[Domain, Role]:
    domain = Domain.objects.visible_to(request.user).select_related("organization", *related)
    domain = domain.filter(pk=pk).first()
    if domain is None:
        raise Http404(_("No such domain."))
    role = tenancy.role_for(request.user, domain.organization_id)
    if edit:
        tenancy.require_edit(role)
    return domain, role


def domain_list(request):
    membership = tenancy.current_membership(request)
    listing = None
    if membership:
        query = pages.ListQuery.from_params(request.GET)
        listing = pages.list_page(membership.organization, query, timezone.now())
    can_edit = bool(membership and membership.can_edit)
    return render(
        request,
        "domains/list.html",
        {"listing": listing, "membership": membership, "can_edit": can_edit},
    )


@require_http_methods(["GET", "POST"])
def domain_add(request):
    membership = tenancy.require_membership(request)
    tenancy.require_edit(membership)
    form = DomainAddForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        result = add_domains(membership.organization, form.cleaned_data["entries"])
        AuditEvent.record_each(
            membership.organization,
            request.user,
            AuditAction.DOMAIN_ADDED,
            [d.display_name for d in result.added],
        )
        if not result.rejected:
            added = len(result.added)
            text = ngettext("Added %(count)d domain.", "Added %(count)d domains.", added)
            messages.success(request, text % {"count": added})
            return redirect("domains:list")
        return render(
            request,
            "domains/add_result.html",
            {"result": result, "form": DomainAddForm(), "membership": membership},
        )
    return render(request, "domains/add.html", {"form": form, "membership": membership})


def domain_detail(request, pk: int):
    domain, role = _load_domain(request, pk, related=["last_run"])
    page = pages.domain_page(domain, timezone.now())
    return render(
        request,
        "domains/detail.html",
        {"domain": domain, "page": page, "can_edit": role.can_edit},
    )


@require_GET
def domain_live(request, pk: int):
    """The parts of the domain's page a finished check changes (grade, checks, mail servers,
    findings, chart), rendered by the page's own includes: static/js/mailsec.js swaps them in."""
    domain, _role = _load_domain(request, pk, related=["last_run"])
    page = pages.domain_page(domain, timezone.now())
    return render(request, "domains/_live.html", {"domain": domain, "page": page})


@require_POST
def domain_check(request, pk: int):
    """ "Check now": queue a check; the page then polls check_status for its progress."""
    from domains import scheduling

    domain, _role = _load_domain(request, pk, edit=True)
    try:
        manual = scheduling.request_check(domain, request.user)
    except scheduling.RateLimited as limited:
        if wants_fragment(request):
            context = {"domain": domain, "error": limited.message.render()}
            return render(request, "domains/_check_status.html", context, status=429)
        messages.error(request, limited.message.render())
        return redirect("domains:detail", pk=domain.pk)
    if wants_fragment(request):
        context = {"domain": domain, "manual": manual}
        return render(request, "domains/_check_status.html", context, status=202)
    messages.info(
        request,
        _("A check of %(name)s is queued; reload to see it.") % {"name": domain.display_name},
    )
    return redirect("domains:detail", pk=domain.pk)


@require_GET
def check_status(request, pk: int, check_pk: int):
    domain, _role = _load_domain(request, pk)
    manual = get_object_or_404(
        ManualCheck.objects.select_related("run"), pk=check_pk, domain=domain
    )
    return render(request, "domains/_check_status.html", {"domain": domain, "manual": manual})


@require_http_methods(["GET", "POST"])
def domain_edit(request, pk: int):
    domain, _role = _load_domain(request, pk, edit=True)
    form = DomainEditForm(request.POST or None, instance=domain)
    if request.method == "POST" and form.is_valid():
        form.save()
        AuditEvent.record(
            domain.organization,
            request.user,
            AuditAction.DOMAIN_CHANGED,
            domain.display_name,
            fields=form.changed_data,
        )
        messages.success(request, _("Saved %(name)s.") % {"name": domain.display_name})
        return redirect("domains:detail", pk=domain.pk)
    return render(request, "domains/edit.html", {"domain": domain, "form": form})


@require_http_methods(["GET", "POST"])
def domain_delete(request, pk: int):
    domain, _role = _load_domain(request, pk, edit=True)
    if request.method == "POST":
        domain.delete()
        AuditEvent.record(
            domain.organization, request.user, AuditAction.DOMAIN_DELETED, domain.display_name
        )
        messages.success(
            request, _("Deleted %(name)s and its history.") % {"name": domain.display_name}
        )
        return redirect("domains:list")
    return render(request, "domains/delete.html", {"domain": domain})
