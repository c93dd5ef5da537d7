-- Build feedback (issue 23): when a build's Python part is done and its
-- component is being compiled, so a strategy shows "compiling" rather
-- than "building" for the second half of its build. Cleared when the
-- build goes back to the queue or another node takes it over.

ALTER TABLE strategy_versions ADD COLUMN compiling_since BIGINT;
