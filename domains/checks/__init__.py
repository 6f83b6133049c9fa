"""One module per category, each registering its Check in base.REGISTRY when imported (the
engine imports them all).

The order of the reports (dependencies still run first: see engine.plan):"""

ORDER = ["mx", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "dnssec", "dane", "bimi"]
# The protocol probe categories (what the servers do), reported after the DNS ones.
ORDER += ["smtp", "submission", "imap", "pop3"]
