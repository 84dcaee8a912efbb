-- The database copy of the service catalog: loaded from SERVICES_FILE at start-up and edited
-- through the API. Rules keep the shape of the file (ip, ptr, dkim, spf, header_from,
-- provider), so that the copy can be validated and written back as YAML unchanged. Position
-- keeps the file order, which breaks attribution ties.
CREATE TABLE services (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL CHECK (name <> ''),
  team text,
  contact text,
  description text,
  rules jsonb NOT NULL DEFAULT '{}',
  position integer NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The catalog treats names case-insensitively, as its validation does.
CREATE UNIQUE INDEX services_name_idx ON services (lower(name));

-- Every change to the catalog increments this version. A sender whose attributed_version is
-- older is attributed again, which recomputes history without re-importing anything.
INSERT INTO settings (key, value) VALUES ('catalog_version', '0');

-- Reverse DNS of source addresses, forward-confirmed, cached until expires_at. ptr is set only
-- when the name resolves back to the address (state 'ok'); names keeps every PTR name returned.
-- 'pending' marks an address whose lookup is in progress until expires_at, so that several
-- instances do not look up the same address at once.
CREATE TABLE source_hosts (
  ip inet PRIMARY KEY,
  ptr text,
  state text NOT NULL
    CHECK (state IN ('pending', 'ok', 'no-ptr', 'not-confirmed', 'timeout', 'error')),
  names text[] NOT NULL DEFAULT '{}',
  error text,
  looked_up_at timestamptz,
  expires_at timestamptz NOT NULL
);

CREATE INDEX source_hosts_expires_idx ON source_hosts (expires_at);
