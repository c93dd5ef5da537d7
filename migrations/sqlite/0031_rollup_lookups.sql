-- PostgreSQL's statement-level rollup triggers changed (see its 0031);
-- SQLite's row-level ones look rows up by key already. Nothing to change.
SELECT 1;
