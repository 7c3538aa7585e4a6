"""``wfk ui``: a web dashboard over any store (read-only unless actions are allowed).

Needs the ``ui`` extra (Starlette, Jinja2, uvicorn): ``pip install
'workflow-kernel[ui]'``. Build the ASGI app in-process with
:func:`create_app`, or serve it with ``wfk ui --store URL``.
"""

from adapters.ui.app import create_app
from adapters.ui.security import check_binding

__all__ = ["check_binding", "create_app"]
