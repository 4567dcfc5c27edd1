-- Addresses are compared case-insensitively as a whole: `Ani@Example.org` and `ani@example.org`
-- are one subscriber, the spelling first given (the lowest id) being the one mail goes to.
-- `lower()` on the "C" collation folds ASCII letters only, as EmailAddress::key does and as
-- SQLite's `lower()` does.
--
-- A store made before may hold one person under several spellings: they are merged into the
-- first, as migrations/sqlite/0006_address_keys.sql does. Nothing of the consent record is lost:
-- every event moves to the kept row. Lists are joined; deliveries move unless the kept row has
-- one for the same issue, in which case the other spelling stays behind as a forgotten row that
-- holds only that delivery history.

CREATE TEMP TABLE merged (dup BIGINT PRIMARY KEY, keeper BIGINT NOT NULL) ON COMMIT DROP;
INSERT INTO merged (dup, keeper)
SELECT s.id, k.keeper
FROM subscribers s
JOIN (SELECT lower(email) AS key, min(id) AS keeper FROM subscribers GROUP BY lower(email) HAVING count(*) > 1) k
  ON lower(s.email) = k.key
WHERE s.id <> k.keeper;

UPDATE subscribers SET
    status = (
        SELECT CASE
            WHEN bool_or(g.status = 'complained') THEN 'complained'
            WHEN bool_or(g.status = 'bounced') THEN 'bounced'
            ELSE (SELECT g2.status FROM subscribers g2 WHERE lower(g2.email) = lower(subscribers.email)
                  ORDER BY g2.status = 'unconfirmed', g2.updated_at DESC, g2.id DESC LIMIT 1)
        END
        FROM subscribers g WHERE lower(g.email) = lower(subscribers.email)),
    name = CASE WHEN name <> '' THEN name ELSE coalesce(
        (SELECT g.name FROM subscribers g WHERE lower(g.email) = lower(subscribers.email) AND g.name <> '' ORDER BY g.id LIMIT 1), '') END,
    updated_at = (SELECT max(g.updated_at) FROM subscribers g WHERE lower(g.email) = lower(subscribers.email))
WHERE id IN (SELECT keeper FROM merged);

UPDATE consent_events c SET subscriber_id = g.keeper FROM merged g WHERE g.dup = c.subscriber_id;

INSERT INTO memberships (list_id, subscriber_id, created_at)
SELECT m.list_id, g.keeper, min(m.created_at) FROM memberships m JOIN merged g ON g.dup = m.subscriber_id
GROUP BY m.list_id, g.keeper
ON CONFLICT DO NOTHING;
DELETE FROM memberships WHERE subscriber_id IN (SELECT dup FROM merged);

-- Of the deliveries of one issue to several spellings, the kept row keeps its own, or else takes
-- the one of the lowest other spelling.
UPDATE deliveries d SET subscriber_id = g.keeper
FROM merged g
WHERE g.dup = d.subscriber_id
  AND NOT EXISTS (SELECT 1 FROM deliveries k WHERE k.subscriber_id = g.keeper AND k.issue_number = d.issue_number)
  AND d.subscriber_id = (SELECT min(o.subscriber_id) FROM deliveries o JOIN merged og ON og.dup = o.subscriber_id
                         WHERE o.issue_number = d.issue_number AND og.keeper = g.keeper);

DELETE FROM subscribers s
WHERE s.id IN (SELECT dup FROM merged) AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscriber_id = s.id);
UPDATE subscribers
SET email = 'forgotten:merged-' || id, name = '', attributes = '{}', status = 'unsubscribed'
WHERE id IN (SELECT dup FROM merged);

CREATE UNIQUE INDEX subscribers_address_key ON subscribers (lower(email));

-- Sign-up requests per mailbox (the address in lower case, a `+tag` dropped), as a digest: at
-- most 3 confirmation mails a day reach one mailbox however its address is spelled.
CREATE TABLE signup_requests (
    mailbox  TEXT    COLLATE "C" NOT NULL,
    at       BIGINT  NOT NULL
);
CREATE INDEX signup_requests_mailbox ON signup_requests (mailbox, at);
CREATE INDEX signup_requests_at ON signup_requests (at);
