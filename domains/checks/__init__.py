"""One module per category; importing this package registers them all (see base.REGISTRY)."""

from domains.checks import bimi, dane, dkim, dmarc, dnssec, mta_sts, mx, spf, tls_rpt  # noqa: F401

# The order of the reports (dependencies still run first: see engine.plan).
ORDER = ["mx", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "dnssec", "dane", "bimi"]
