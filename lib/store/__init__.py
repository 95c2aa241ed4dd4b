"""The only package that talks to DynamoDB (and to S3 and SQS for maintenance). Rooms by topic:

table.py         the client (built at init), error translation, plain operations, DynamoDB's limits
expressions.py   Expression (placeholders), Update clauses, Query (reads about what it returns)
codec.py         attribute values <-> Python values, directly
keys.py          every key, index name and key code of the table, in one place
entity.py        the base of every typed item, and how one is made without pydantic's per-field work
items.py         the conversation's typed items deriving their keys from keys.py; one decoder for all
records.py       typed items that are not a conversation's: idempotency, erasures, TTL lowerings, jobs
conditions.py    named conditions
concurrency.py   a write's context (tenant, clock, token), back-off, parallel reads
services.py      services: create, read, end, associate, expiration, attached data
expiration.py    expiration clauses and the children's TTL
starts.py        starting states and tasks, transitions, their attached data
ends.py          ending states and tasks, cascades
pages.py         reads: a state or task, pages of children, embedded children, owners' lists
erasure.py       deleting conversations (DELETE, purge) and finishing their erasure
events.py        the change feed's events: names, entries (`ev`), `seq` and `open` on the service item
cascades.py      what a service's completion cascades to: its active states and tasks
composite.py     composite start's lock
idempotency.py   Idempotency-Key records, written in the creating transaction
windows.py       maintenance reads: time windows (export stream, files), purge targets
due.py           due work: auto-completions to record, unfinished erasures
jobs.py          maintenance jobs: create, lease, checkpoint
queue.py         the jobs' queue (SQS)
files.py         export files (S3 multipart, or a local folder)
grants.py        access grants (lib.api.access decides with them)
secrets.py       the paging secret's versions (Secrets Manager; lib.paging_keys caches them)
"""
