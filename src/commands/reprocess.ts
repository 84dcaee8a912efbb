import { addOutcome, emptySummary, formatSummary } from '../ingest/import-files.js';
import { processStoredInput } from '../ingest/pipeline.js';
import type { Runtime } from '../runtime.js';
import { reopenRawInputs } from '../store/raw-inputs.js';

/**
 * `dmarc-lens reprocess`: reads quarantined and partly read inputs again, for instance after an
 * upgrade that learned a new format, and prints what changed. Exit code 1 while any input is
 * still rejected.
 */
export async function runReprocess(runtime: Runtime): Promise<number> {
  const { pool } = runtime.db;
  const ids = await reopenRawInputs(pool, ['quarantined', 'partial']);
  const summary = emptySummary();

  const { rows } = await pool.query<{ id: number; name: string }>(
    'SELECT id, name FROM raw_inputs WHERE id = ANY($1)',
    [ids],
  );
  const names = new Map(rows.map((row) => [row.id, row.name]));
  for (const id of ids) {
    const outcome = await processStoredInput(runtime.ingest, id);
    addOutcome(summary, `input ${id} (${names.get(id) ?? 'unnamed'})`, outcome);
  }

  const recovered = ids.length - summary.quarantined - summary.partial;
  process.stdout.write(`Reprocessed ${ids.length} inputs: ${recovered} now fully read.\n`);
  process.stdout.write(`${formatSummary(summary)}\n`);
  return summary.quarantined > 0 || summary.partial > 0 ? 1 : 0;
}
