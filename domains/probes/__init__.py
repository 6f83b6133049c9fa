"""Protocol probes: what a domain's mail servers really do on SMTP, submission, IMAP and POP3.

`results.py` is the contract between the probes (the conversations, run through `domains.net`)
and the pure verdicts in `domains/checks/{smtp,submission,imap,pop3}.py`.
"""
