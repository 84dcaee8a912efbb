import type pg from 'pg';
import type { Logger } from 'pino';

// Months before now that get a partition of their own; older records stay in records_other.
const MONTHS_BACK = 36;
// Months after now that get one ahead of time, so that no current record waits for DDL.
const MONTHS_AHEAD = 12;
const PARTITION_LOCK_KEY = 7_489_002;

function monthStart(year: number, month: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

function partitionName(start: Date): string {
  const month = String(start.getUTCMonth() + 1).padStart(2, '0');
  return `records_${start.getUTCFullYear()}_${month}`;
}

/**
 * Creates the monthly partitions of `records` from three years back to one year ahead.
 * Rows that a bad reporter clock put in the default partition for a month that now gets its
 * own are moved there first, since PostgreSQL refuses to attach a partition whose range
 * still has rows in the default one.
 */
export async function ensureRecordPartitions(
  pool: pg.Pool,
  log: Logger,
  now = new Date(),
): Promise<void> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT child.relname AS name
       FROM pg_inherits
       JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
       JOIN pg_class child ON child.oid = pg_inherits.inhrelid
      WHERE parent.relname = 'records'`,
  );
  const existing = new Set(rows.map((row) => row.name));

  for (let offset = -MONTHS_BACK; offset <= MONTHS_AHEAD; offset++) {
    const start = monthStart(now.getUTCFullYear(), now.getUTCMonth() + offset);
    const end = monthStart(start.getUTCFullYear(), start.getUTCMonth() + 1);
    const name = partitionName(start);
    if (existing.has(name)) continue;
    await createPartition(pool, name, start, end);
    log.debug({ partition: name }, 'Created records partition');
  }
}

async function createPartition(pool: pg.Pool, name: string, start: Date, end: Date): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
    const exists = await client.query('SELECT 1 FROM pg_class WHERE relname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(
        `CREATE TABLE ${name} (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
      );
      await client.query(
        `WITH moved AS (
           DELETE FROM records_other WHERE date_begin >= $1 AND date_begin < $2 RETURNING *
         )
         INSERT INTO ${name} SELECT * FROM moved`,
        [start, end],
      );
      await client.query(
        `ALTER TABLE records ATTACH PARTITION ${name}
           FOR VALUES FROM ('${start.toISOString()}') TO ('${end.toISOString()}')`,
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Drops the monthly partitions that end before `cutoff`; returns their names. */
export async function dropPartitionsBefore(pool: pg.Pool, cutoff: Date): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT child.relname AS name
       FROM pg_inherits
       JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
       JOIN pg_class child ON child.oid = pg_inherits.inhrelid
      WHERE parent.relname = 'records' AND child.relname ~ '^records_[0-9]{4}_[0-9]{2}$'`,
  );
  const dropped: string[] = [];
  for (const { name } of rows) {
    const [, year, month] = name.split('_').map(Number);
    const end = monthStart(year, month);
    if (end <= cutoff) {
      await pool.query(`DROP TABLE ${name}`);
      dropped.push(name);
    }
  }
  return dropped;
}
