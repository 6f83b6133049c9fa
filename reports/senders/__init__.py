"""Senders: who sends mail in a domain's name, by service rather than by address.

- services.py: the data files (base domain -> service name and type), the sender a source
  address belongs to (its service, its base domain, or its /24 or /48 block).
- enrich.py: the worker's part: reverse DNS (PTR, forward-confirmed), base domain and
  country of each source address, cached in SourceAddress.
- classify.py: pure: a sender's numbers and the team's mark in, authorised / forwarded /
  failing_authorised / suspicious out.
- readiness.py: pure: what one step stricter a DMARC policy would do to the domain's mail.
- report.py: what the pages and `manage.py senders` show, read from the rollups.
- news.py: a new sender above the threshold is a domain event (and an alert).
"""
