import pg from 'pg';

/** What the database contains after an ingest, read straight from the tables. */
export interface IngestState {
  /** Rows of `reports`, with the totals each report row carries. */
  reports: number;
  reportRecordCount: number;
  reportMessageCount: number;
  /** Rows of `records` and the sum of their counts: a report cut short shows up here. */
  recordRows: number;
  recordMessages: number;
  /** Reports not yet added to the daily tables. */
  reportsNotRolledUp: number;
  /** Messages in `daily_domain_stats`: a report rolled up twice shows up here. */
  rolledUpMessages: number;
  rolledUpReports: number;
  /** Raw inputs by status, for example `{ done: 230, quarantined: 8 }`. */
  rawInputs: Record<string, number>;
  /** Report rows that share a reporter, report_id, domain and date range (must be 0). */
  duplicateReports: number;
}

/** Reads the ingest totals of the database at `url`. */
export async function readIngestState(url: string): Promise<IngestState> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const totals = await client.query(
      `SELECT count(*)::int AS reports,
              coalesce(sum(record_count), 0)::int AS record_count,
              coalesce(sum(message_count), 0)::int AS message_count,
              count(*) FILTER (WHERE rolled_up_at IS NULL)::int AS not_rolled_up
         FROM reports`,
    );
    const records = await client.query(
      `SELECT count(*)::int AS rows, coalesce(sum(count), 0)::int AS messages FROM records`,
    );
    const rollups = await client.query(
      `SELECT coalesce(sum(messages), 0)::int AS messages, coalesce(sum(reports), 0)::int AS reports
         FROM daily_domain_stats`,
    );
    const statuses = await client.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM raw_inputs GROUP BY status ORDER BY status`,
    );
    const duplicates = await client.query(
      `SELECT count(*)::int AS n FROM (
         SELECT 1 FROM reports
          GROUP BY reporter_org, report_id, domain, date_begin, date_end
         HAVING count(*) > 1) AS repeated`,
    );
    return {
      reports: totals.rows[0].reports,
      reportRecordCount: totals.rows[0].record_count,
      reportMessageCount: totals.rows[0].message_count,
      recordRows: records.rows[0].rows,
      recordMessages: records.rows[0].messages,
      reportsNotRolledUp: totals.rows[0].not_rolled_up,
      rolledUpMessages: rollups.rows[0].messages,
      rolledUpReports: rollups.rows[0].reports,
      rawInputs: Object.fromEntries(statuses.rows.map((row) => [row.status, row.n])),
      duplicateReports: duplicates.rows[0].n,
    };
  } finally {
    await client.end();
  }
}

/**
 * Message-IDs of IMAP deliveries whose raw input is committed (not pending). A message filed
 * in the done or failed mailbox must be among them: it may only move after its commit.
 */
export async function committedMessageIds(url: string): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ message_id: string }>(
      `SELECT DISTINCT d.origin->>'messageId' AS message_id
         FROM raw_input_deliveries d JOIN raw_inputs r ON r.id = d.raw_input_id
        WHERE d.source = 'imap' AND r.status <> 'pending' AND d.origin ? 'messageId'`,
    );
    return new Set(rows.map((row) => row.message_id));
  } finally {
    await client.end();
  }
}

/** Counts the deliveries recorded per source, such as `{ imap: 240, watch: 30 }`. */
export async function countDeliveries(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ source: string; n: number }>(
      `SELECT source, count(*)::int AS n FROM raw_input_deliveries GROUP BY source`,
    );
    return Object.fromEntries(rows.map((row) => [row.source, row.n]));
  } finally {
    await client.end();
  }
}
