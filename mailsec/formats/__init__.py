"""Date formats of the interface's languages where they differ from Django's (FORMAT_MODULE_PATH):
English keeps the ISO dates its pages always showed; French uses Django's own (`05/03/2026`)."""
