"""The only package that talks to DynamoDB.

table.py          the client (built at init), error translation, expressions, plain operations
codec.py          attribute values <-> Python values, directly
items.py          typed items: keys and index keys declared once, one decoder
conditions.py     named conditions
conversations.py  operations at the level of intent: services, states, tasks, lists
composite.py      composite start's lock
idempotency.py    Idempotency-Key records, written in the creating transaction
maintenance.py    exports, purges, jobs and due work (auto-complete, unfinished deletes)
"""
