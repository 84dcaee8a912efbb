-- Alert rules as the dashboard shows them: the effective settings (defaults, then the
-- ALERT_RULES_FILE, then edits made in the dashboard) and the dashboard edits on their own, so
-- that a later change of the file still applies to every setting nobody edited by hand.
CREATE TABLE alert_rules (
  rule text PRIMARY KEY,
  enabled boolean NOT NULL,
  settings jsonb NOT NULL,
  overrides jsonb NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text
);

-- One row per alert, from the evaluation that opened it until the one that found it resolved.
-- The key names what the alert is about (rule, domain, service or source), so that the same
-- problem found again updates the open row instead of sending a new message. A key that fires
-- again after being resolved gets a new row, which keeps the history.
CREATE TABLE alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_key text NOT NULL,
  rule text NOT NULL,
  domain text,
  service text,
  severity text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
  state text NOT NULL CHECK (state IN ('open', 'resolved')),
  title text NOT NULL,
  -- The latest finding: numbers, likely cause, fix, dashboard link and listed sources.
  details jsonb NOT NULL,
  -- How bad the finding is in the rule's own unit (points below threshold, messages per day),
  -- and the items it lists (sources, inputs); both decide whether a finding got worse.
  level double precision NOT NULL,
  members text[] NOT NULL DEFAULT '{}',
  notified_level double precision,
  notified_members text[] NOT NULL DEFAULT '{}',
  opened_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  last_notified_at timestamptz,
  resolved_at timestamptz,
  -- cleared: the rule no longer finds it; rule-disabled: the rule was switched off.
  resolution text CHECK (resolution IN ('cleared', 'rule-disabled'))
);

CREATE UNIQUE INDEX alerts_open_key_idx ON alerts (alert_key) WHERE state = 'open';
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC);

-- Every message to send, one row per recipient, with the rendered content, so that a retry
-- sends exactly what the evaluation decided and a failure stays visible. alert_id is null for
-- digests and test messages.
CREATE TABLE alert_deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  alert_id bigint REFERENCES alerts (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('opened', 'worse', 'reminder', 'resolved', 'digest', 'test')),
  recipient text NOT NULL,
  subject text NOT NULL,
  text_body text NOT NULL,
  html_body text NOT NULL,
  -- pending: waiting for its next attempt; sent: accepted by the SMTP server; failed: every
  -- attempt failed, or it could not be sent at all (no SMTP_URL).
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  -- For a pending row, when it may be tried next. An attempt in progress moves it into the
  -- future first, so that another instance does not send the same message at the same time.
  next_attempt_at timestamptz NOT NULL,
  last_error text,
  created_at timestamptz NOT NULL,
  sent_at timestamptz,
  message_id text
);

CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_alert_idx ON alert_deliveries (alert_id);
CREATE INDEX alert_deliveries_created_idx ON alert_deliveries (created_at DESC);

-- Digests already queued, one per recipient and period, so that each goes out once even with
-- several instances evaluating.
CREATE TABLE alert_digests (
  recipient text NOT NULL,
  frequency text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
  period_start date NOT NULL,
  delivery_id bigint REFERENCES alert_deliveries (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (recipient, frequency, period_start)
);

-- The IMAP connection as the poller last saw it, one row per host and mailbox, so that an alert
-- can tell how long connecting has failed.
CREATE TABLE mailbox_status (
  mailbox text PRIMARY KEY,
  last_connected_at timestamptz,
  -- Set at the first failure after a success; cleared by the next success.
  failing_since timestamptz,
  failures integer NOT NULL DEFAULT 0,
  last_error text,
  updated_at timestamptz NOT NULL
);
