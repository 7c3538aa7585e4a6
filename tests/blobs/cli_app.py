"""An app for ``wfk --app``: the ``texts`` workflow and the blob store its values over
the inline limit go to (the directory ``$WFK_TEST_BLOBS`` names, read at import)."""

from __future__ import annotations

import os
import tempfile

from adapters.blobs import FileBlobStore
from tests.blobs.support import texts

BLOBS = FileBlobStore(os.environ.get("WFK_TEST_BLOBS") or tempfile.mkdtemp(prefix="wfk-blobs-"))
APP = [texts, BLOBS]
TWO_STORES = [texts, BLOBS, FileBlobStore(tempfile.mkdtemp(prefix="wfk-blobs-"))]
