-- Issues may now be paused (their bounce or complaint rate passed its limit) and, for review,
-- be drafts, held or approved. `note` says why an issue stands where it is; `guard_since` is when
-- it was last resumed: its bounce and complaint rates count only what was sent after that. The
-- same change as migrations/sqlite/0009_issue_statuses.sql.
ALTER TABLE issues DROP CONSTRAINT issues_status_check;
ALTER TABLE issues ADD CONSTRAINT issues_status_check
    CHECK (status IN ('draft', 'held', 'approved', 'sending', 'paused', 'sent', 'cancelled'));
ALTER TABLE issues ADD COLUMN note TEXT;
ALTER TABLE issues ADD COLUMN guard_since BIGINT;
