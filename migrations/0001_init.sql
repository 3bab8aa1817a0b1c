-- Sluice control plane: the first schema. Postgres is the only state of
-- sluice-control; every table here is written through the admin API.
-- Ids are text with a type prefix and a millisecond timestamp, so that they
-- sort by creation (cursor pagination walks them): ws_, tok_, key_, vk_,
-- cfg_, grd_, pmt_. Every mutable row has a `version` that the API exposes as
-- its ETag and checks against If-Match.

CREATE TABLE workspaces (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1
);

-- Admin tokens authenticate callers of the admin API. workspace_id NULL
-- means the token reaches every workspace. Only the SHA-256 of the secret is
-- kept.
CREATE TABLE admin_tokens (
    id           text PRIMARY KEY,
    workspace_id text REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   bytea NOT NULL UNIQUE,
    token_hint   text NOT NULL,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    version      integer NOT NULL DEFAULT 1
);
CREATE INDEX admin_tokens_workspace ON admin_tokens (workspace_id, id);

-- Versioned documents: a head row whose current_version points into the
-- immutable *_versions rows. An update appends a version; a rollback appends
-- a copy of an older one, so history only grows.
CREATE TABLE configs (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            text NOT NULL,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX configs_workspace ON configs (workspace_id, id);
CREATE TABLE config_versions (
    config_id  text NOT NULL REFERENCES configs (id) ON DELETE CASCADE,
    version    integer NOT NULL,
    body       jsonb NOT NULL,
    note       text NOT NULL DEFAULT '',
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (config_id, version)
);

CREATE TABLE guardrails (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            text NOT NULL,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX guardrails_workspace ON guardrails (workspace_id, id);
CREATE TABLE guardrail_versions (
    guardrail_id text NOT NULL REFERENCES guardrails (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    body         jsonb NOT NULL,
    note         text NOT NULL DEFAULT '',
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (guardrail_id, version)
);

CREATE TABLE prompts (
    id              text PRIMARY KEY,
    workspace_id    text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name            text NOT NULL,
    current_version integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1
);
CREATE INDEX prompts_workspace ON prompts (workspace_id, id);
CREATE TABLE prompt_versions (
    prompt_id  text NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    version    integer NOT NULL,
    body       jsonb NOT NULL,
    note       text NOT NULL DEFAULT '',
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (prompt_id, version)
);

-- API keys: what applications send to the gateway. Only SHA-256 hashes are
-- kept; after a rotation the old hash stays valid until old_key_expires_at.
CREATE TABLE api_keys (
    id                 text PRIMARY KEY,
    workspace_id       text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               text NOT NULL,
    key_hash           bytea NOT NULL UNIQUE,
    key_hint           text NOT NULL,
    old_key_hash       bytea,
    old_key_expires_at timestamptz,
    scopes             text[] NOT NULL DEFAULT '{}',
    allowed_models     text[] NOT NULL DEFAULT '{}',
    default_config_id  text REFERENCES configs (id) ON DELETE SET NULL,
    metadata           jsonb NOT NULL DEFAULT '{}',
    rate_limit_rpm     integer,
    rate_limit_tpm     bigint,
    budget_limit       numeric(20, 6),
    budget_period      text CHECK (budget_period IN ('day', 'week', 'month', 'total')),
    expires_at         timestamptz,
    enabled            boolean NOT NULL DEFAULT true,
    revoked_at         timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    version            integer NOT NULL DEFAULT 1
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id, id);
CREATE UNIQUE INDEX api_keys_old_hash ON api_keys (old_key_hash) WHERE old_key_hash IS NOT NULL;

-- Virtual keys: provider credentials. The secret fields are one JSON object
-- sealed with AES-256-GCM under the master key (secret = nonce | ciphertext |
-- tag, secret_key_id = which master key); options holds the non-secret
-- provider settings (Azure resource, Bedrock region...).
CREATE TABLE virtual_keys (
    id             text PRIMARY KEY,
    workspace_id   text NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name           text NOT NULL,
    provider       text NOT NULL,
    options        jsonb NOT NULL DEFAULT '{}',
    secret         bytea NOT NULL,
    secret_key_id  text NOT NULL,
    secret_hint    text NOT NULL,
    allowed_models text[] NOT NULL DEFAULT '{}',
    metadata       jsonb NOT NULL DEFAULT '{}',
    rate_limit_rpm integer,
    rate_limit_tpm bigint,
    budget_limit   numeric(20, 6),
    budget_period  text CHECK (budget_period IN ('day', 'week', 'month', 'total')),
    expires_at     timestamptz,
    enabled        boolean NOT NULL DEFAULT true,
    rotated_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    version        integer NOT NULL DEFAULT 1
);
CREATE INDEX virtual_keys_workspace ON virtual_keys (workspace_id, id);

-- Prices in US dollars per million tokens. Seeded by 0002_pricing.sql.
CREATE TABLE model_pricing (
    provider              text NOT NULL,
    model                 text NOT NULL,
    input_per_mtok        numeric(14, 6) NOT NULL CHECK (input_per_mtok >= 0),
    output_per_mtok       numeric(14, 6) NOT NULL CHECK (output_per_mtok >= 0),
    cached_input_per_mtok numeric(14, 6) CHECK (cached_input_per_mtok >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               integer NOT NULL DEFAULT 1,
    PRIMARY KEY (provider, model)
);

-- Usage per scope and day (filled by log ingestion; read by budgets).
CREATE TABLE usage_counters (
    scope             text NOT NULL CHECK (scope IN ('api_key', 'virtual_key', 'user', 'workspace', 'model')),
    scope_id          text NOT NULL,
    workspace_id      text NOT NULL,
    day               date NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost              numeric(24, 12) NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, day)
);
CREATE INDEX usage_counters_workspace ON usage_counters (workspace_id, day);

-- Every write through the admin API, with its before and after images
-- (secrets never appear in them: resources are rendered without secrets).
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    workspace_id  text,
    actor_id      text NOT NULL,
    actor_role    text NOT NULL,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    before        jsonb,
    after         jsonb,
    request_id    text
);
CREATE INDEX audit_log_workspace ON audit_log (workspace_id, id);
CREATE INDEX audit_log_resource ON audit_log (resource_type, resource_id, id);

-- Gateway nodes, as they said hello (filled by the snapshot service).
CREATE TABLE nodes (
    id               text PRIMARY KEY,
    address          text NOT NULL DEFAULT '',
    software_version text NOT NULL DEFAULT '',
    snapshot_version bigint NOT NULL DEFAULT 0,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now()
);

-- Idempotency-Key on creates: the first answer is kept (sealed under the
-- master key, since a create may answer a secret shown once) and replayed
-- for a retry with the same key and body.
CREATE TABLE idempotency_keys (
    actor_id     text NOT NULL,
    idem_key     text NOT NULL,
    route        text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer NOT NULL DEFAULT 0,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Snapshot versions come from one sequence so that they are monotonic across
-- control-plane replicas.
CREATE SEQUENCE snapshot_version;

-- Request logs arrive with their own migration (partitioned by day).
