-- MISSED is found by where a planned communication's window ends: its
-- end_date, or start_date plus the default window when it has none. The
-- query read every planned row whose window had started (all of a
-- campaign's contacts on its first morning) on every engine tick to find
-- the few whose window had passed; with this index the rows with an end
-- date are found by it, and those without by communications_due's start
-- date range.
-- (`status` leads although the predicate fixes it: SQLite, planning
-- without statistics, prefers an index that matches an equality.)
CREATE INDEX communications_window_end ON communications (status, end_date) WHERE status = 'PLANNED' AND end_date IS NOT NULL;
