-- Multi-row checked writes (issue 14): the store writes the updates and
-- inserts of several runs, stages or jobs of one transaction with one
-- statement, which must change every row it names. expect_ids(expected,
-- changed) raises SQLSTATE WK001, as expect_rows does, when a row of
-- "expected" is not among the ids the statement changed, with that id (the
-- first in the given order) as the error's DETAIL: the store names that row in
-- the effect's own error (StaleVersionError, or StoreError for a duplicate or
-- a missing row). The ids of "expected" are distinct.
CREATE FUNCTION expect_ids(expected text[], changed text[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    IF cardinality(changed) = cardinality(expected) THEN
        RETURN cardinality(changed);
    END IF;
    SELECT e.id INTO missing
    FROM unnest(expected) WITH ORDINALITY AS e(id, n)
    WHERE e.id <> ALL (changed)
    ORDER BY e.n
    LIMIT 1;
    RAISE EXCEPTION 'the statement changed no row %', missing
        USING ERRCODE = 'WK001', DETAIL = missing;
END
$$;
