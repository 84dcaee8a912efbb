import type { Runtime } from '../runtime.js';

export async function runServe(runtime: Runtime): Promise<number> {
  runtime.log.info('serve is not wired yet');
  return 0;
}
