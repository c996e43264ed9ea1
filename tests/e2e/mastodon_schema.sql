-- The tables scripts/mastodon_export.sql reads, and the ones their foreign
-- keys need, transcribed from Mastodon's db/schema.rb (version
-- 2025_12_17_091936, at commit 0070a2071a1d836cc6005ddb79d92ecbef998aed),
-- as Rails 8 creates them on PostgreSQL:
--   t.string -> character varying, t.text -> text, t.integer -> integer,
--   t.bigint -> bigint, t.boolean -> boolean, t.jsonb -> jsonb, t.inet -> inet,
--   t.datetime precision: nil -> timestamp without time zone,
--   t.datetime (Rails 7+ default precision 6) -> timestamp(6) without time zone,
--   array: true -> type[], create_table's implicit id -> bigserial primary key.
-- Every column, default and NOT NULL is as in schema.rb. Left out: accounts'
-- default id timestamp_id('accounts'), a Mastodon function (the tests give
-- ids); the full-text search_index and the other indexes the export does not
-- use; foreign keys to tables not created here (invites, user_roles).
-- Foreign keys keep schema.rb's names where it gives one.

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    username character varying DEFAULT '' NOT NULL,
    domain character varying,
    private_key text,
    public_key text DEFAULT '' NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    note text DEFAULT '' NOT NULL,
    display_name character varying DEFAULT '' NOT NULL,
    uri character varying DEFAULT '' NOT NULL,
    url character varying,
    avatar_file_name character varying,
    avatar_content_type character varying,
    avatar_file_size integer,
    avatar_updated_at timestamp without time zone,
    header_file_name character varying,
    header_content_type character varying,
    header_file_size integer,
    header_updated_at timestamp without time zone,
    avatar_remote_url character varying,
    locked boolean DEFAULT false NOT NULL,
    header_remote_url character varying DEFAULT '' NOT NULL,
    last_webfingered_at timestamp without time zone,
    inbox_url character varying DEFAULT '' NOT NULL,
    outbox_url character varying DEFAULT '' NOT NULL,
    shared_inbox_url character varying DEFAULT '' NOT NULL,
    followers_url character varying DEFAULT '' NOT NULL,
    protocol integer DEFAULT 0 NOT NULL,
    memorial boolean DEFAULT false NOT NULL,
    moved_to_account_id bigint,
    featured_collection_url character varying,
    fields jsonb,
    actor_type character varying,
    discoverable boolean,
    also_known_as character varying[],
    silenced_at timestamp without time zone,
    suspended_at timestamp without time zone,
    hide_collections boolean,
    avatar_storage_schema_version integer,
    header_storage_schema_version integer,
    sensitized_at timestamp without time zone,
    suspension_origin integer,
    trendable boolean,
    reviewed_at timestamp without time zone,
    requested_review_at timestamp without time zone,
    indexable boolean DEFAULT false NOT NULL,
    attribution_domains character varying[] DEFAULT '{}',
    following_url character varying DEFAULT '' NOT NULL,
    id_scheme integer DEFAULT 1,
    feature_approval_policy integer DEFAULT 0 NOT NULL
);
CREATE UNIQUE INDEX index_accounts_on_username_and_domain_lower
    ON accounts (lower((username)::text), COALESCE(lower((domain)::text), ''::text));
CREATE INDEX index_accounts_on_domain_and_id ON accounts (domain, id);
ALTER TABLE accounts ADD FOREIGN KEY (moved_to_account_id) REFERENCES accounts (id) ON DELETE SET NULL;

CREATE TABLE oauth_applications (
    id bigserial PRIMARY KEY,
    name character varying NOT NULL,
    uid character varying NOT NULL,
    secret character varying NOT NULL,
    redirect_uri text NOT NULL,
    scopes character varying DEFAULT '' NOT NULL,
    created_at timestamp without time zone,
    updated_at timestamp without time zone,
    superapp boolean DEFAULT false NOT NULL,
    website character varying,
    owner_type character varying,
    owner_id bigint,
    confidential boolean DEFAULT true NOT NULL
);
CREATE UNIQUE INDEX index_oauth_applications_on_uid ON oauth_applications (uid);

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email character varying DEFAULT '' NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    encrypted_password character varying DEFAULT '' NOT NULL,
    reset_password_token character varying,
    reset_password_sent_at timestamp without time zone,
    sign_in_count integer DEFAULT 0 NOT NULL,
    current_sign_in_at timestamp without time zone,
    last_sign_in_at timestamp without time zone,
    confirmation_token character varying,
    confirmed_at timestamp without time zone,
    confirmation_sent_at timestamp without time zone,
    unconfirmed_email character varying,
    locale character varying,
    consumed_timestep integer,
    otp_required_for_login boolean DEFAULT false NOT NULL,
    last_emailed_at timestamp without time zone,
    otp_backup_codes character varying[],
    account_id bigint NOT NULL,
    disabled boolean DEFAULT false NOT NULL,
    invite_id bigint,
    chosen_languages character varying[],
    created_by_application_id bigint,
    approved boolean DEFAULT true NOT NULL,
    sign_in_token character varying,
    sign_in_token_sent_at timestamp without time zone,
    webauthn_id character varying,
    sign_up_ip inet,
    skip_sign_in_token boolean,
    role_id bigint,
    settings text,
    time_zone character varying,
    otp_secret character varying,
    age_verified_at timestamp(6) without time zone,
    require_tos_interstitial boolean DEFAULT false NOT NULL
);
CREATE INDEX index_users_on_account_id ON users (account_id);
CREATE UNIQUE INDEX index_users_on_email ON users (email);
ALTER TABLE users ADD CONSTRAINT fk_50500f500d
    FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE;
ALTER TABLE users ADD FOREIGN KEY (created_by_application_id) REFERENCES oauth_applications (id) ON DELETE SET NULL;
ALTER TABLE oauth_applications ADD CONSTRAINT fk_b0988c7c0a
    FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE;

CREATE TABLE oauth_access_tokens (
    id bigserial PRIMARY KEY,
    token character varying NOT NULL,
    refresh_token character varying,
    expires_in integer,
    revoked_at timestamp without time zone,
    created_at timestamp without time zone NOT NULL,
    scopes character varying,
    application_id bigint,
    resource_owner_id bigint,
    last_used_at timestamp without time zone,
    last_used_ip inet
);
CREATE UNIQUE INDEX index_oauth_access_tokens_on_token ON oauth_access_tokens (token);
CREATE UNIQUE INDEX index_oauth_access_tokens_on_refresh_token
    ON oauth_access_tokens (refresh_token text_pattern_ops) WHERE (refresh_token IS NOT NULL);
CREATE INDEX index_oauth_access_tokens_on_resource_owner_id
    ON oauth_access_tokens (resource_owner_id) WHERE (resource_owner_id IS NOT NULL);
ALTER TABLE oauth_access_tokens ADD CONSTRAINT fk_f5fc4c1ee3
    FOREIGN KEY (application_id) REFERENCES oauth_applications (id) ON DELETE CASCADE;
ALTER TABLE oauth_access_tokens ADD CONSTRAINT fk_e84df68546
    FOREIGN KEY (resource_owner_id) REFERENCES users (id) ON DELETE CASCADE;
