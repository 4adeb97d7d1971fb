"""``leanllm-otel ui``: a local, read-only web viewer over the SQL event store (needs the ``serve`` extra).

::

    leanllm-otel ui --database-url sqlite:///events.db          # http://127.0.0.1:4320

    with UIServer("sqlite:///events.db", port=0) as viewer:     # tests, notebooks
        print(viewer.url)

Pages are rendered on the server (Jinja2, autoescape) and work without JavaScript; the stylesheet and the live
mode's small script ship inside the package. The store is opened read-only (SQLite ``mode=ro``, PostgreSQL read-only
transactions); the feedback form is the one write, through ``leanllm_otel.feedback``.
"""

from leanllm_otel.ui.security import TOKEN_ENV
from leanllm_otel.ui.server import DEFAULT_HOST, DEFAULT_PORT, UIServer

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "UIServer"]
