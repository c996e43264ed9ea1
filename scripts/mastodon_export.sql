-- Lifeboat mirror export for a Mastodon primary: accounts and credentials.
--
--   psql -X -At -d "$MASTODON_DATABASE_URL" -f mastodon_export.sql > changes.jsonl
--   psql ... -v since='2026-12-02 10:00:00' -f mastodon_export.sql > changes.jsonl
--
-- Cron runs it through scripts/mastodon_export_since, which keeps the
-- watermark for `since` and uploads the file.
--
-- Writes one change document of the mirror protocol per line (JSON Lines), for
-- the bucket's mirror/inbox/ (README, "Mirroring a Mastodon primary:
-- credentials"). Read only: nothing is written, no temporary object is made,
-- and one statement streams through a cursor, so a replica will do.
--
-- psql variable (-v tokens_stored=...):
--   plain  (default) oauth_access_tokens.token holds the bearer token itself,
--          as Mastodon ships: config/initializers/doorkeeper.rb has no
--          hash_token_secrets, and it sets reuse_access_token, which Doorkeeper
--          does not allow with hashed tokens. The query hashes each one.
--   sha256 the primary runs Doorkeeper's hash_token_secrets (Sha256Hash: 64
--          lowercase hex). Stored digests pass through; a value that is no
--          digest (a token kept from before hashing, which Doorkeeper's
--          fallback_to_plain_secrets still accepts) is hashed.
-- Any other storage (bcrypt, PBKDF2) cannot be turned into a SHA-256 digest.
--
-- psql variable (-v since=...):
--   unset  a full export: every local account with a user, and all its tokens.
--   set    an incremental one: only what may have changed at or after `since`
--          (UTC, as Rails stores datetimes, unless it names a zone):
--          - accounts whose accounts.updated_at or users.updated_at >= since,
--            with all their tokens (a user frozen, suspended, memorialised or
--            with a new password changes every token's `revoked`);
--          - and tokens created at or after since, revoked in [since, now],
--            or expired in [since, now) (created_at + expires_in seconds).
--          Every change Mastodon makes to a field read here goes through
--          ActiveRecord's update!/save, which sets updated_at: a display name
--          (UpdateAccountService), suspend!/unsuspend!, memorialize!, a
--          password (change_password!, Devise's reset), disable!/enable!,
--          approve!, a confirmation (Devise's confirm,
--          mark_email_as_confirmed!). Revocations set revoked_at to now
--          (Doorkeeper's revoke, User#revoke_access!'s touch_all). Not caught,
--          so the weekly full export is the safety net: a row written by
--          update_column(s)/update_all or by hand without updated_at, a
--          revoked_at or updated_at written in the past, a row committed
--          later than the caller's overlap after its updated_at (a long
--          transaction, an app server's clock behind the database's).
--          Neither form sees a deleted token (an OAuth application its owner
--          deleted takes its tokens with it): nothing is exported for it.
--          A credential may name an account sent in an earlier file.
--          users.updated_at also moves at each sign-in refresh (User#
--          update_sign_in!, at most once a day per active user), so an
--          incremental export carries each day's active users once.
--
-- Checked against Mastodon's db/schema.rb, version 2025_12_17_091936:
--   accounts: id, username, domain, display_name, created_at, updated_at,
--             suspended_at, memorial
--   users: id, account_id, encrypted_password (Devise bcrypt, no pepper),
--          confirmed_at, approved, disabled, updated_at
--   oauth_access_tokens: token, resource_owner_id (-> users.id), scopes,
--          created_at, expires_in, revoked_at
-- Rails writes every datetime there as timestamp without time zone, in UTC.
--
-- Documents:
--   {"type": "account", "username", "display_name", "created_at",
--    "suspended", "password_bcrypt"}: each local account (domain IS NULL)
--    with a user row, so not the instance actor.
--   {"type": "credential", "username", "token_sha256", "scopes", "revoked"}:
--    each access token of those users; tokens of no user (client
--    credentials) are not exported.
--
-- What the fields mean:
--   username   lower-cased: Mastodon keeps local usernames unique
--              case-insensitively (index_accounts_on_username_and_domain_lower)
--              and Lifeboat's are lowercase.
--   suspended  accounts.suspended_at is set, as Account#suspended? says: the
--              account is gone from the primary's timelines as well.
--   password_bcrypt and revoked follow what Mastodon itself would accept now.
--              A user who is disabled (the admin's "freeze"), unconfirmed,
--              pending approval, memorialised or suspended cannot sign in, and
--              Api::BaseController#require_user! refuses their tokens
--              (User#functional?). Such a user's posts stay public on
--              Mastodon unless the account is suspended, so a frozen user is
--              not "suspended": their password is null and all their tokens
--              are revoked. A token is also revoked as Doorkeeper's revoked?
--              and expired? say: revoked_at <= now, or expires_in set and
--              created_at + expires_in < now. A token revoked for a time still
--              to come counts as live until that time: run the export often.
--   password_bcrypt is passed as Devise wrote it ($2a$ or $2b$ or $2y$, all
--              read by bcrypt verifiers); an empty or non-bcrypt value (SSO,
--              LDAP or PAM users) is null.

\set ON_ERROR_STOP on
\set QUIET on
-- Rows reach stdout through a cursor, 1,000 at a time, instead of psql
-- holding the whole result in memory.
\set FETCH_COUNT 1000

\if :{?tokens_stored}
\else
\set tokens_stored plain
\endif
SELECT :'tokens_stored' IN ('plain', 'sha256') AS tokens_stored_known \gset
\if :tokens_stored_known
\else
-- Fail (psql exits 3) with nothing on stdout, so no half-made file is sent.
DO $$ BEGIN RAISE EXCEPTION 'tokens_stored must be plain or sha256'; END $$;
\endif

-- `changed_since` is SQL text: a constant the planner folds, so that without
-- `since` every filter below folds to true and the full export's plan is
-- unchanged. :'since' quotes the value as a literal.
\if :{?since}
\set changed_since '(' :'since' '::timestamptz AT TIME ZONE ''UTC'')'
\else
\set changed_since 'NULL::timestamp'
\endif
-- A token's document changed in the window: created, revoked, or expired.
\set token_changed '(t.created_at >= ' :changed_since ' OR (t.revoked_at >= ' :changed_since ' AND t.revoked_at <= now()) OR (t.created_at + make_interval(secs => t.expires_in) >= ' :changed_since ' AND t.created_at + make_interval(secs => t.expires_in) < now()))'

BEGIN READ ONLY;
-- The datetimes are UTC without a zone; comparing them to now() converts
-- them with the session's zone, so make that UTC whatever the server's is.
SET LOCAL TIME ZONE 'UTC';
-- A cron job must not queue behind a migration's exclusive lock (and make
-- every query of the primary queue behind itself): give up instead.
SET LOCAL lock_timeout = '10s';
-- A `since` that is no datetime fails here (psql exits 3), before any output.
-- After SET TIME ZONE: a since with no zone is read as UTC.
SELECT :changed_since AS since_checked \gset

SELECT document::text
FROM accounts AS a
JOIN users AS u ON u.account_id = a.id
CROSS JOIN LATERAL (
    SELECT lower(a.username) AS username,
           a.suspended_at IS NULL
             AND NOT a.memorial
             AND NOT u.disabled
             AND u.approved
             AND u.confirmed_at IS NOT NULL AS can_sign_in,
           :changed_since IS NULL
             OR a.updated_at >= :changed_since
             OR u.updated_at >= :changed_since AS changed
) AS who
CROSS JOIN LATERAL (
    -- The account first, then its tokens: a reader of the file meets every
    -- username in an account document before any credential names it.
    SELECT json_build_object(
               'type', 'account',
               'username', who.username,
               'display_name', a.display_name,
               'created_at', to_char(a.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'suspended', a.suspended_at IS NOT NULL,
               'password_bcrypt', CASE
                   WHEN who.can_sign_in
                        AND u.encrypted_password ~ '^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
                   THEN u.encrypted_password
               END
           ) AS document
    WHERE who.changed
    UNION ALL
    SELECT json_build_object(
               'type', 'credential',
               'username', who.username,
               'token_sha256', CASE
                   WHEN :'tokens_stored' = 'sha256' AND t.token ~ '^[0-9a-f]{64}$' THEN t.token
                   ELSE encode(sha256(convert_to(t.token, 'UTF8')), 'hex')
               END,
               'scopes', coalesce(t.scopes, ''),
               'revoked', NOT who.can_sign_in
                          OR coalesce(t.revoked_at <= now(), false)
                          OR coalesce(t.created_at + make_interval(secs => t.expires_in) < now(), false)
           )
    FROM oauth_access_tokens AS t
    WHERE t.resource_owner_id = u.id
      AND (who.changed OR :token_changed)
) AS change
WHERE a.domain IS NULL
  -- One scan of the tokens for the owners of changed ones (a hashed subplan),
  -- not one index probe per account.
  AND (who.changed
       OR u.id IN (SELECT t.resource_owner_id FROM oauth_access_tokens AS t WHERE :token_changed));

COMMIT;
