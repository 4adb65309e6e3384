"""The work queue under the names its callers use: the port's job record and the local (SQLite) adapter.

The port is `shared.ports.WorkQueue`; adapters: `shared.adapters.local.work_queue` (SQLite under
BANKOPS_HOME) and `shared.adapters.azure.work_queue` (Storage Queues + Tables); the composition root picks one.
"""

from shared.adapters.local.work_queue import SqliteWorkQueue
from shared.automation.messages import DEFAULT_LANE, LANE_OF_KIND
from shared.ports import Job

WorkQueue = SqliteWorkQueue

__all__ = ["DEFAULT_LANE", "LANE_OF_KIND", "Job", "SqliteWorkQueue", "WorkQueue"]
