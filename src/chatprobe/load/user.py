"""Where the load user lived before the engine was split (kept so old imports work).

The wire exchange is :mod:`chatprobe.load.exchange`, the request template
:mod:`chatprobe.load.targets`, the users :mod:`chatprobe.load.users`.
"""

from chatprobe.load.exchange import connection_pool, stream_exchange
from chatprobe.load.targets import RequestTemplate

__all__ = ["RequestTemplate", "connection_pool", "stream_exchange"]
