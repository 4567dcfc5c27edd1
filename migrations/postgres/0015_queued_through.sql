-- An issue's readers are queued a chunk at a time, in subscriber id order, while its first
-- messages already go out. `queued_through` is the last subscriber id queued so far; NULL means
-- every reader is queued (as for every issue made before this column).
ALTER TABLE issues ADD COLUMN queued_through BIGINT;
