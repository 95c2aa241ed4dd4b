"""Import (contract §11): conversations from another Context Services — through its export stream
with content, or from its export files in JSON Lines — into a tenant and group of this project's
store, kept exactly (ids, timestamps, statuses, dispositions, attached data, associations,
expiration), idempotent and resumable.

records.py     the representations read (§3), checked with the API's own types
files.py       source: export files (a folder or S3), states and tasks staged by service
stream.py      source: a running Context Services' export stream, paged by Link, SigV4 when deployed
source.py      what both sources offer
mapping.py     representations -> the items the API would have stored (and "identical")
run.py         the import: batches, existence, comparison, writes, checkpoint
pace.py        write-rate limit and adaptive back-off
checkpoint.py  where an interrupted import resumes
progress.py    progress on a terminal or as plain lines
report.py      the final report, text and JSON
command.py     `cs-import` / `make import`

The writes themselves are lib.store.imported's: the only place that knows keys and batching.
"""
