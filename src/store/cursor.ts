import type pg from 'pg';

/**
 * Streams the rows of a query in batches through a server-side cursor, so that an export of
 * millions of rows starts at once and holds one batch in memory.
 */
export async function* streamRows<Row>(
  pool: pg.Pool,
  sql: string,
  params: unknown[],
  batchSize = 2000,
): AsyncGenerator<Row[]> {
  const client = await pool.connect();
  let open = false;
  try {
    await client.query('BEGIN READ ONLY');
    open = true;
    await client.query(`DECLARE export_cursor NO SCROLL CURSOR FOR ${sql}`, params);
    for (;;) {
      const { rows } = await client.query<Row & pg.QueryResultRow>(
        `FETCH ${batchSize} FROM export_cursor`,
      );
      if (rows.length === 0) break;
      yield rows;
      if (rows.length < batchSize) break;
    }
    await client.query('COMMIT');
    open = false;
  } finally {
    if (open) await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}
