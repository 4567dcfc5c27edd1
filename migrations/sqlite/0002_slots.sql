-- Each schedule slot, once: the issue it made, or why it made none.
CREATE TABLE slots (
    key           TEXT    PRIMARY KEY,  -- wall-clock time and zone: "2024-03-18T09:00:00 Europe/Paris"
    at            INTEGER NOT NULL,     -- the instant it fired (unix ms)
    outcome       TEXT    NOT NULL CHECK (outcome IN ('issue', 'skipped', 'missed')),
    issue_number  INTEGER REFERENCES issues (number),
    reason        TEXT,
    recorded_at   INTEGER NOT NULL
);
CREATE INDEX slots_at ON slots (at);
CREATE INDEX issues_status ON issues (status);
