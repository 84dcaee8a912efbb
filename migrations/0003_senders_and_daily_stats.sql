-- A sender is what a record says about where mail came from: the source address, the
-- identifiers and the DKIM and SPF results it presented. Records carry a key derived from
-- those values at ingest; attribution and enrichment write to senders, never to records, so
-- that a catalog change recomputes thousands of senders instead of millions of records.
ALTER TABLE records ADD COLUMN sender_key uuid;

-- Reports whose records are not yet in senders and the daily tables below. A worker rolls
-- them up shortly after ingest, outside the ingest transaction, to keep that path short.
ALTER TABLE reports ADD COLUMN rolled_up_at timestamptz;
CREATE INDEX reports_rollup_pending_idx ON reports (id) WHERE rolled_up_at IS NULL;

CREATE TABLE senders (
  sender_key uuid PRIMARY KEY,
  source_ip inet,
  header_from text,
  envelope_from text,
  dkim jsonb NOT NULL DEFAULT '[]',
  spf jsonb NOT NULL DEFAULT '[]',
  first_seen timestamptz NOT NULL DEFAULT now(),
  service text,
  provider text,
  attribution_rule text,
  attribution_confidence text,
  -- The catalog version the attribution was computed with; null until attributed.
  attributed_version bigint
);

CREATE INDEX senders_source_ip_idx ON senders (source_ip);
CREATE INDEX senders_service_idx ON senders (service);
CREATE INDEX senders_unattributed_idx ON senders (attributed_version NULLS FIRST);

-- Messages per day, domain, reporter and sender, so that the dashboard never scans records.
-- The day is the UTC day of the report's date_begin.
CREATE TABLE daily_sender_stats (
  day date NOT NULL,
  domain text NOT NULL,
  reporter_org text NOT NULL,
  sender_key uuid NOT NULL,
  is_foreign boolean NOT NULL,
  records integer NOT NULL,
  messages bigint NOT NULL,
  pass_messages bigint NOT NULL,
  dkim_pass_messages bigint NOT NULL,
  spf_pass_messages bigint NOT NULL,
  quarantined_messages bigint NOT NULL,
  rejected_messages bigint NOT NULL,
  PRIMARY KEY (day, domain, reporter_org, sender_key)
);

-- Messages per day, domain and reporter: the small table behind the overview chart.
CREATE TABLE daily_domain_stats (
  day date NOT NULL,
  domain text NOT NULL,
  reporter_org text NOT NULL,
  is_foreign boolean NOT NULL,
  reports integer NOT NULL,
  records integer NOT NULL,
  messages bigint NOT NULL,
  pass_messages bigint NOT NULL,
  dkim_pass_messages bigint NOT NULL,
  spf_pass_messages bigint NOT NULL,
  quarantined_messages bigint NOT NULL,
  rejected_messages bigint NOT NULL,
  PRIMARY KEY (day, domain, reporter_org)
);

-- Settings the process compares at start-up, such as the DOMAINS that decided is_foreign.
CREATE TABLE settings (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
