# The short formats, which the tables and charts use: ISO dates and a 24-hour clock, as the
# English pages showed before they were translated (Django's English would be "03/05/2026 2 p.m.").
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
