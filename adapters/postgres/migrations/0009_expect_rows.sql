-- Checked writes fail on the server (issue 14): a store effect whose statement
-- must change a row (an update at the version its decision read, an insert of
-- a new id) ends in expect_rows(count), which raises SQLSTATE WK001 when the
-- count is 0. The store sends a transaction's effects with its next statement
-- or with its COMMIT, in one round trip; a check that only the client made
-- would come too late to stop that COMMIT. Raised on the server, the error
-- aborts the transaction, the COMMIT after it in the pipeline is skipped, and
-- the store turns WK001 into the effect's own error (StaleVersionError, or
-- StoreError for a duplicate or a missing row).
CREATE FUNCTION expect_rows(changed bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF changed = 0 THEN
        RAISE EXCEPTION 'the statement changed no row' USING ERRCODE = 'WK001';
    END IF;
    RETURN changed;
END
$$;
