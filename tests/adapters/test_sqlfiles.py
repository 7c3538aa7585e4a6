"""How both SQL stores read their SQL files (``adapters.sqlfiles``).

A named query or migration missing, repeated or misnumbered fails when the
store's module is imported, with a message naming the file.
"""

from __future__ import annotations

import pytest

from adapters.sqlfiles import order_migrations, parse_queries, read_migrations, read_queries


def test_a_query_named_twice_is_refused() -> None:
    """Two blocks with one name would silently drop the first."""
    text = "-- name: get_run\nSELECT 1;\n-- name: get_run\nSELECT 2;\n"
    with pytest.raises(ValueError, match=r"x\.sql: query 'get_run' is defined twice"):
        parse_queries(text, "x.sql")


def test_queries_missing_from_the_file_are_named() -> None:
    """A store's expected names that the file lacks, or does not expect, are listed."""
    with pytest.raises(
        ValueError,
        match=r"adapters\.sqlite/queries\.sql: missing queries \['no_such_query'\], "
        r"unknown queries \[.*'get_run'.*\]",
    ):
        read_queries("adapters.sqlite", expected=["no_such_query"])


def test_a_query_keeps_its_leading_comment_and_drops_the_next_heading() -> None:
    """Comments inside a block are SQL; a heading after the block belongs to the next one."""
    text = "-- name: one\n-- why\nSELECT 1;\n\n-- section --\n-- name: two\nSELECT 2;\n"
    assert parse_queries(text) == {"one": "-- why\nSELECT 1;", "two": "SELECT 2;"}


def test_migrations_numbered_twice_are_refused() -> None:
    with pytest.raises(ValueError, match="two migrations numbered 1: 'a' and 'b'"):
        order_migrations([("0001_a.sql", ""), ("0001_b.sql", "")], "m")


def test_a_misnamed_migration_is_refused_rather_than_skipped() -> None:
    with pytest.raises(ValueError, match=r"named NNNN_what\.sql, got '2_b\.sql'"):
        order_migrations([("0001_a.sql", ""), ("2_b.sql", "")], "m")


def test_no_migrations_is_refused() -> None:
    with pytest.raises(ValueError, match="m: no migrations found"):
        order_migrations([("__init__.py", "")], "m")


@pytest.mark.parametrize("package", ["adapters.sqlite", "adapters.postgres"])
def test_each_store_ships_migrations_numbered_from_one(package: str) -> None:
    """Read from package data, so an installed store finds its scripts too."""
    migrations = read_migrations(package)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all("CREATE TABLE" in m.sql for m in migrations[:1])
