"""One local user's SQLite database: history, the outbox, joined channels, pinned keys and
known peers (the standard library's sqlite3; no ring I/O here).

``UserStore`` is synchronous and belongs to one thread. The asyncio core never calls it
directly: it uses ``AsyncStore``, which runs every call, in call order, on one dedicated
worker thread, so the event loop (and the UI behind it) never waits on the disk.

Guarantees:
- A write has been committed to disk when its method returns (``AsyncStore``: when its
  future is done): an outbox row survives kill -9 of the process, and power loss too
  (``synchronous=FULL``: ``_files.SYNCHRONOUS`` says why).
- Message ids are unique: adding a message or an outbox row again is a no-op.
- One process at a time: an exclusive ``flock`` on ``<db>.lock`` refuses a second one.
- A corrupt database is renamed aside, never overwritten, and ``set_aside`` says where.
- Every SQLite or file error surfaces as ``StoreError`` naming the file.
"""

from ._none import NoStore
from ._records import Conversation, Hit, Message, OutboxRow, StoreError
from ._schema import MIGRATIONS, Migration, fts5_available
from ._thread import ASYNC_METHODS, AsyncStore, InlineStore
from ._user import PEERS_KEPT, STATES, UserStore

FILENAME = "chat.sqlite3"   # in the user's directory: DataDir(...).user_dir(nick) / FILENAME

__all__ = ["ASYNC_METHODS", "FILENAME", "MIGRATIONS", "PEERS_KEPT", "STATES", "AsyncStore",
           "Conversation", "Hit", "InlineStore", "Message", "Migration", "NoStore",
           "OutboxRow", "StoreError", "UserStore", "fts5_available"]
