-- Raw inputs: every file, upload or mail message exactly as received, stored before it is
-- parsed so that nothing is lost. The same bytes delivered twice share one row.
CREATE TABLE raw_inputs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256 bytea NOT NULL UNIQUE,
  byte_size bigint NOT NULL,
  -- 'gzip' when the stored content was compressed for storage, 'identity' otherwise.
  content_encoding text NOT NULL,
  content bytea NOT NULL,
  name text NOT NULL,
  source text NOT NULL,
  origin jsonb NOT NULL DEFAULT '{}',
  -- pending: stored, outcome not yet committed; done: every report read; partial: some parts
  -- unreadable; quarantined: nothing readable.
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'done', 'partial', 'quarantined')),
  error_code text,
  error_message text,
  errors jsonb NOT NULL DEFAULT '[]',
  reports_stored integer NOT NULL DEFAULT 0,
  reports_duplicate integer NOT NULL DEFAULT 0,
  reports_foreign integer NOT NULL DEFAULT 0,
  attempts integer NOT NULL DEFAULT 0,
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz
);

CREATE INDEX raw_inputs_open_idx ON raw_inputs (received_at)
  WHERE status IN ('pending', 'partial', 'quarantined');

-- Every delivery of a raw input, including repeats of the same bytes.
CREATE TABLE raw_input_deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  raw_input_id bigint NOT NULL REFERENCES raw_inputs (id) ON DELETE CASCADE,
  source text NOT NULL,
  name text NOT NULL,
  origin jsonb NOT NULL DEFAULT '{}',
  delivered_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX raw_input_deliveries_input_idx ON raw_input_deliveries (raw_input_id);

-- One row per aggregate report. A report is the same report when the reporter, its
-- report_id, the policy domain and the date range match; a resend changes nothing.
CREATE TABLE reports (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  raw_input_id bigint NOT NULL REFERENCES raw_inputs (id),
  document text NOT NULL,
  reporter_org text NOT NULL,
  reporter_email text,
  reporter_extra_contact text,
  report_id text NOT NULL,
  date_begin timestamptz NOT NULL,
  date_end timestamptz NOT NULL,
  version text,
  namespace text,
  generator text,
  report_errors text[] NOT NULL DEFAULT '{}',
  domain text NOT NULL,
  policy_adkim text,
  policy_aspf text,
  policy_p text,
  policy_sp text,
  policy_np text,
  policy_pct integer,
  policy_fo text,
  policy_testing text,
  policy_discovery_method text,
  extensions jsonb,
  warnings text[] NOT NULL DEFAULT '{}',
  -- A report about a domain outside DOMAINS: kept, but left out of the team's numbers.
  is_foreign boolean NOT NULL DEFAULT false,
  record_count integer NOT NULL DEFAULT 0,
  message_count bigint NOT NULL DEFAULT 0,
  pass_count bigint NOT NULL DEFAULT 0,
  stored_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (reporter_org, report_id, domain, date_begin, date_end)
);

CREATE INDEX reports_date_idx ON reports (date_begin);
CREATE INDEX reports_domain_idx ON reports (domain, date_begin);
CREATE INDEX reports_raw_input_idx ON reports (raw_input_id);

-- One row per <record>, partitioned by month of the report's date_begin so that retention
-- drops whole partitions. Reporter, domain and date are copied from the report so that the
-- dashboard filters without a join. DKIM and SPF results and override reasons keep every
-- element a record carries, in order, as JSON arrays.
CREATE TABLE records (
  id bigint GENERATED ALWAYS AS IDENTITY,
  report_ref bigint NOT NULL,
  date_begin timestamptz NOT NULL,
  domain text NOT NULL,
  reporter_org text NOT NULL,
  is_foreign boolean NOT NULL,
  source_ip inet,
  count integer NOT NULL,
  disposition text,
  eval_dkim text,
  eval_spf text,
  dmarc_pass boolean NOT NULL,
  header_from text,
  envelope_from text,
  envelope_to text,
  dkim jsonb NOT NULL DEFAULT '[]',
  spf jsonb NOT NULL DEFAULT '[]',
  reasons jsonb NOT NULL DEFAULT '[]',
  extensions jsonb,
  PRIMARY KEY (id, date_begin)
) PARTITION BY RANGE (date_begin);

-- Dates far in the past or future (bad reporter clocks) land here instead of in a partition
-- of their own.
CREATE TABLE records_other PARTITION OF records DEFAULT;

CREATE INDEX records_report_idx ON records (report_ref);
CREATE INDEX records_source_idx ON records (source_ip, date_begin);
CREATE INDEX records_domain_date_idx ON records (domain, date_begin);
