-- Each list file's content as gazette last saw it change, by a digest, so that the file's bad
-- rows are reported when it changes rather than at every send.
CREATE TABLE list_files (
    list        TEXT    PRIMARY KEY,
    digest      TEXT    NOT NULL,
    changed_at  BIGINT  NOT NULL
);
