"""SQL kept in files: the named queries and numbered migrations of the SQL stores.

Each SQL store keeps one ``-- name: xyz`` block per operation in its
``queries.sql`` and one script per schema version in
``migrations/NNNN_what.sql``. Both read them through here, once at import,
with :mod:`importlib.resources`, so the files are found in an installed
package as well as in a checkout. Nothing here formats SQL: statements are
used as written, with values bound as parameters.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from importlib.resources import files

from attrs import frozen

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_(\w+)\.sql$")


def parse_queries(text: str, source: str = "queries.sql") -> dict[str, str]:
    """Split SQL text into ``{name: statement}`` at each ``-- name: xyz`` line.

    Text before the first block is a file comment and is dropped, and so are
    comment lines trailing a block (the heading of the next section).

    >>> text = "-- intro\\n-- name: one\\nSELECT 1;\\n-- heading\\n-- name: two\\nSELECT 2;\\n"
    >>> parse_queries(text)
    {'one': 'SELECT 1;', 'two': 'SELECT 2;'}
    >>> parse_queries("-- name: one\\nSELECT 1;\\n-- name: one\\nSELECT 2;\\n")
    Traceback (most recent call last):
    ...
    ValueError: queries.sql: query 'one' is defined twice

    Raises:
        ValueError: two blocks have the same name.
    """
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        lines = body.strip().splitlines()
        while lines and lines[-1].lstrip().startswith("--"):
            lines.pop()
        queries[name] = "\n".join(lines).strip()
    return queries


def read_queries(
    package: str, expected: Collection[str] | None = None, filename: str = "queries.sql"
) -> dict[str, str]:
    """The named queries of ``filename`` in ``package``, by name.

    Args:
        package: the package holding the file, such as ``"adapters.sqlite"``.
        expected: if given, exactly the names the file must define, so a
            block missing from (or extra in) the file fails at import rather
            than at the first call.
        filename: the file's name inside ``package``.

    Raises:
        ValueError: a name is defined twice, or the names are not ``expected``.
    """
    source = f"{package}/{filename}"
    text = files(package).joinpath(filename).read_text(encoding="utf-8")
    queries = parse_queries(text, source)
    if expected is not None and queries.keys() != set(expected):
        missing = sorted(set(expected) - queries.keys())
        unknown = sorted(queries.keys() - set(expected))
        raise ValueError(f"{source}: missing queries {missing}, unknown queries {unknown}")
    return queries


@frozen
class Migration:
    """One schema step: ``version`` N turns a version N-1 schema into version N."""

    version: int
    name: str
    sql: str


def order_migrations(scripts: Iterable[tuple[str, str]], source: str) -> tuple[Migration, ...]:
    """The ``(file name, script)`` pairs as migrations, in version order.

    Versions must run 1, 2, 3, ... with no gaps and no repeats, so a schema's
    version says exactly which scripts it has seen. A ``.sql`` file not named
    ``NNNN_what.sql`` is refused rather than skipped; other files are ignored.

    >>> order_migrations([("0002_b.sql", "B"), ("0001_a.sql", "A"), ("x.py", "")], "m")
    (Migration(version=1, name='a', sql='A'), Migration(version=2, name='b', sql='B'))
    >>> order_migrations([("0001_a.sql", "A"), ("0003_c.sql", "C")], "m")
    Traceback (most recent call last):
    ...
    ValueError: m: migrations must be numbered 1, 2, 3... without gaps, found [1, 3]

    Raises:
        ValueError: a misnamed script, two scripts with one number, a gap, or none.
    """
    found: dict[int, Migration] = {}
    for filename, script in scripts:
        match = _MIGRATION.match(filename)
        if match is None:
            if filename.endswith(".sql"):
                raise ValueError(
                    f"{source}: expected a migration named NNNN_what.sql, got {filename!r}"
                )
            continue
        version = int(match[1])
        if version in found:
            raise ValueError(
                f"{source}: two migrations numbered {version}: "
                f"{found[version].name!r} and {match[2]!r}"
            )
        found[version] = Migration(version, match[2], script)
    versions = sorted(found)
    if not versions:
        raise ValueError(f"{source}: no migrations found")
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(
            f"{source}: migrations must be numbered 1, 2, 3... without gaps, found {versions}"
        )
    return tuple(found[version] for version in versions)


def read_migrations(package: str, folder: str = "migrations") -> tuple[Migration, ...]:
    """The migration scripts in ``folder`` of ``package``, in version order.

    Raises:
        ValueError: see :func:`order_migrations`.
    """
    directory = files(package).joinpath(folder)
    scripts = (
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in directory.iterdir()
        if entry.name.endswith(".sql")
    )
    return order_migrations(scripts, f"{package}/{folder}")
