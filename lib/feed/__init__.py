"""The change feed's publisher (contract §10): the table's stream records -> domain events -> the
EventBridge bus. It reads stream records, and the table only through the one read the function
hands it (a conversation's active children, for a service's end whose cascade is read); an import
contract keeps the store's operations out of it.

events.py     a stream record -> the events it carries (the service item's `seq` / `ev`, an erasure
              record's `ev`, a TTL removal -> ServiceExpired), each with its envelope and stable id
bus.py        events -> PutEvents entries (10 a call, 256 KB a call), published with retries of the
              entries EventBridge rejects, with back-off, within the invocation's time
publisher.py  a batch of stream records as Lambda delivers it -> published, or reported as a batch
              item failure (Powertools batch processing) so that Lambda retries from that record
redrive.py    the re-drive of batches Lambda gave up on (their descriptions in the dead-letter
              queue): the records fetched again from the stream, published through the same code
"""
