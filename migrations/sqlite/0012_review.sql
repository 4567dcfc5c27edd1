-- What a draft needs while an editor reviews it: the intro they wrote (Markdown, as typed), the
-- articles they left out (JSON, as `articles`; they are no longer the issue's, so a later issue
-- may carry them), the subject they wrote (used as it stands instead of the subject template), and the
-- time of the slot the draft is for (`send_at`, unix milliseconds; NULL: sent once approved).
ALTER TABLE issues ADD COLUMN intro TEXT;
ALTER TABLE issues ADD COLUMN left_out TEXT NOT NULL DEFAULT '[]';
ALTER TABLE issues ADD COLUMN edited_subject TEXT;
ALTER TABLE issues ADD COLUMN send_at INTEGER;
