-- The copies of an issue: readers who get the same articles share one variant, rendered once.
-- `articles` is a JSON array of positions in the issue's `articles`, in their order. A delivery
-- names its variant; one without (made before variants, or without editions and topics) carried
-- every article of its issue.
CREATE TABLE issue_variants (
    issue_number BIGINT NOT NULL REFERENCES issues (number),
    variant      BIGINT NOT NULL,
    articles     TEXT   NOT NULL,
    PRIMARY KEY (issue_number, variant)
);

-- The identities each variant carried, so that what a reader received is a query.
CREATE TABLE variant_articles (
    issue_number BIGINT NOT NULL,
    variant      BIGINT NOT NULL,
    identity     TEXT   NOT NULL,
    PRIMARY KEY (issue_number, variant, identity)
);

CREATE INDEX variant_articles_identity ON variant_articles (identity);

ALTER TABLE deliveries ADD COLUMN variant BIGINT;
