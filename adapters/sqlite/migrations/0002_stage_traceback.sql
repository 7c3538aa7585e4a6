-- A failed attempt keeps the formatted traceback of what it raised (SPEC §19).
ALTER TABLE stages ADD COLUMN error_traceback TEXT;
