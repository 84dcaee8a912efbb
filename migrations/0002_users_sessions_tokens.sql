-- Dashboard users. The password hash is stored as scrypt$N$r$p$salt$hash (salt and hash in
-- base64), so that each hash carries the cost parameters it was made with.
CREATE TABLE users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  username text NOT NULL UNIQUE CHECK (username = lower(username) AND username <> ''),
  role text NOT NULL CHECK (role IN ('viewer', 'admin')),
  password_hash text NOT NULL,
  -- Set for the one-time password of the first admin: the dashboard asks for a new one first.
  must_change_password boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz NOT NULL DEFAULT now()
);

-- Login sessions. Only the SHA-256 of the cookie value is stored, so that a read of this
-- table does not hand out live sessions.
CREATE TABLE sessions (
  id_hash bytea PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- Sent back by the dashboard in the X-CSRF-Token header of every state-changing request.
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  ip text,
  user_agent text
);

CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- API tokens for scripts (Authorization: Bearer). Stored as SHA-256; the token itself is shown
-- once, when it is created. Revoked tokens are kept so that the list shows who had access.
CREATE TABLE api_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('viewer', 'admin')),
  token_hash bytea NOT NULL UNIQUE,
  -- The first characters of the token, enough to recognise it in the list.
  token_prefix text NOT NULL,
  created_by bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- Failed logins, counted per client address and per user name to slow down password
-- guessing. Kept in the database so that every instance sees the same counts.
CREATE TABLE login_failures (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ip text NOT NULL,
  username text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_ip_idx ON login_failures (ip, failed_at);
CREATE INDEX login_failures_username_idx ON login_failures (username, failed_at);
