"""Date formats, one per locale (FORMAT_MODULE_PATH): every page, email and package writes a date
the same way, and a short and a long form never disagree (no 11/29/2026 beside Nov. 29, 2026)."""
