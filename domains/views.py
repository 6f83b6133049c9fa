from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from domains import tenancy
from domains.bulk import add_domains
from domains.forms import DomainAddForm, DomainEditForm
from domains.models import Domain, Role


def _load_domain(request, pk: int, *, edit: bool = False) -> tuple[Domain, Role]:
    domain = Domain.objects.visible_to(request.user).select_related("organization").filter(pk=pk)
    domain = domain.first()
    if domain is None:
        raise Http404("No such domain.")
    role = tenancy.role_for(request.user, domain.organization_id)
    if edit:
        tenancy.require_edit(role)
    return domain, role


def domain_list(request):
    membership = tenancy.current_membership(request)
    domains = membership.organization.domains.all() if membership else Domain.objects.none()
    can_edit = bool(membership and membership.can_edit)
    return render(
        request,
        "domains/list.html",
        {"domains": domains, "membership": membership, "can_edit": can_edit},
    )


@require_http_methods(["GET", "POST"])
def domain_add(request):
    membership = tenancy.require_membership(request)
    tenancy.require_edit(membership)
    form = DomainAddForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        result = add_domains(membership.organization, form.cleaned_data["entries"])
        if not result.rejected:
            messages.success(request, f"Added {len(result.added)} domain(s).")
            return redirect("domains:list")
        return render(
            request,
            "domains/add_result.html",
            {"result": result, "form": DomainAddForm(), "membership": membership},
        )
    return render(request, "domains/add.html", {"form": form, "membership": membership})


def domain_detail(request, pk: int):
    domain, role = _load_domain(request, pk)
    return render(request, "domains/detail.html", {"domain": domain, "can_edit": role.can_edit})


@require_http_methods(["GET", "POST"])
def domain_edit(request, pk: int):
    domain, _ = _load_domain(request, pk, edit=True)
    form = DomainEditForm(request.POST or None, instance=domain)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved {domain.display_name}.")
        return redirect("domains:detail", pk=domain.pk)
    return render(request, "domains/edit.html", {"domain": domain, "form": form})


@require_http_methods(["GET", "POST"])
def domain_delete(request, pk: int):
    domain, _ = _load_domain(request, pk, edit=True)
    if request.method == "POST":
        domain.delete()
        messages.success(request, f"Deleted {domain.display_name} and its history.")
        return redirect("domains:list")
    return render(request, "domains/delete.html", {"domain": domain})
