# cython: language_level=3
"""Aggregate records as rows of the records table, compiled (Cython).

A million-record report makes a million rows, each with three small JSON arrays (auth results
and override reasons); written in Python this was a quarter of an import's time. The JSON is
written here directly, with json's own escaping for any string that needs it, so it reads back
exactly (tests/reports/test_ingest.py checks it with json.loads).
"""

from json.encoder import encode_basestring


cdef str _inner(object value):
    """A string as it goes between the quotes of a JSON string: plain text as is, anything
    else escaped by json."""
    cdef str text = value
    cdef Py_UCS4 c
    for c in text:
        if c < 0x20 or c == u'"' or c == u'\\':
            return encode_basestring(text)[1:-1]
    return text


cdef str _results_json(list results, str middle):
    """Auth results as JSON: domain, `middle` (DKIM: selector; SPF: scope), result, human_result."""
    if not results:
        return "[]"
    cdef list items = []
    cdef dict r
    for r in results:
        # An f-string of str parts is one allocation in Cython; `+` would copy at every step.
        items.append(
            f'{{"domain":"{_inner(r["domain"])}","{middle}":"{_inner(r[middle])}",'
            f'"result":"{_inner(r["result"])}","human_result":"{_inner(r["human_result"])}"}}'
        )
    return f'[{",".join(items)}]'


cpdef str dkim_json(list results):
    return _results_json(results, "selector")


cpdef str spf_json(list results):
    return _results_json(results, "scope")


cpdef str reasons_json(list reasons):
    if not reasons:
        return "[]"
    cdef list items = []
    cdef dict r
    for r in reasons:
        items.append(f'{{"type":"{_inner(r["type"])}","comment":"{_inner(r["comment"])}"}}')
    return f'[{",".join(items)}]'


def record_rows(object report_pk, list batch, dict selectors, Py_ssize_t max_selectors):
    """The rows of a batch of AggregateRecords (in the column order of
    reports.ingest.RecordWriter.COLUMNS), their messages and DMARC-passing messages.

    DKIM (domain, selector) pairs seen are added to `selectors` while it holds fewer than
    `max_selectors`. Every text has already been cut to its column's length by the parser.
    """
    cdef list rows = []
    cdef dict result
    messages = 0
    passed = 0
    for rec in batch:
        count = rec.count
        messages += count
        dkim_results = rec.dkim_results
        if rec.dkim == "pass" or rec.spf == "pass":
            passed += count
        if len(selectors) < max_selectors:
            for result in dkim_results:
                if result["selector"] and result["domain"]:
                    selectors[(result["domain"], result["selector"])] = None
        rows.append((
            report_pk,
            rec.source_ip,
            count,
            rec.disposition,
            rec.dkim,
            rec.spf,
            rec.header_from,
            rec.envelope_from,
            rec.envelope_to,
            reasons_json(rec.reasons),
            dkim_json(dkim_results),
            spf_json(rec.spf_results),
        ))
    return rows, messages, passed
