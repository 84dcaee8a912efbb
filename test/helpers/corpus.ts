import fs from 'node:fs';
import path from 'node:path';

/** The shared corpus of real reports, present beside the project on development machines. */
export const CORPUS_DIR =
  process.env.DMARC_CORPUS_DIR ??
  path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'corpus');

export const AGGREGATE_DIR = path.join(CORPUS_DIR, 'aggregate');

export function corpusAvailable(): boolean {
  return fs.existsSync(AGGREGATE_DIR);
}

/** Every file under a folder, sorted, as paths relative to it. */
export function listFiles(directory: string): string[] {
  const files: string[] = [];
  const visit = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) visit(full);
      else files.push(path.relative(directory, full));
    }
  };
  visit(directory);
  return files.sort();
}
