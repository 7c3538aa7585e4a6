"""SQLite schema migrations, ``NNNN_what.sql``, applied in order by ``adapters.sqlite.schema``.

This directory is a package so that setuptools ships the ``.sql`` files.
"""
