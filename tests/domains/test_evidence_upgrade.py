"""Evidence now ends as a sentence (issue 14): a run stored before, whose evidence had no full
stop, and the next run with the same evidence as a sentence make no "resolved"/"new" events."""

from domains import changes
from tests.domains.test_pages import add_run

CATEGORIES = {"spf": {"status": "fail"}}


def test_a_full_stop_added_to_the_evidence_is_no_change(acme_domain):
    old = ("spf.all_pass", "critical", "SPF allows the whole internet (+all)",
           'every host passes: acme.example -> +all ("v=spf1 +all")', "fix")  # fmt: skip
    new = (*old[:3], old[3] + ".", "fix")
    before = add_run(acme_domain, days_ago=1, categories=CATEGORIES, findings=[old])
    after = add_run(acme_domain, categories=CATEGORIES, findings=[new])
    assert changes.compare(before, after) == []
    other = (*old[:3], 'every host passes: acme.example -> +all ("v=spf1 mx +all").', "fix")
    later = add_run(acme_domain, categories=CATEGORIES, findings=[other])
    kinds = sorted(e.kind for e in changes.compare(after, later))
    assert kinds == ["finding_appeared", "finding_resolved"]
