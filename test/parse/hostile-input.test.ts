import { describe, expect, it } from 'vitest';

import { HOSTILE_CASES } from '../../src/bench/hostile-cases.js';
import { DEFAULT_LIMITS, parseInput } from '../../src/parse/index.js';

describe('hostile input', () => {
  it.each(HOSTILE_CASES.map((hostile) => [hostile.name, hostile] as const))(
    '%s',
    async (name, hostile) => {
      const limits = { ...DEFAULT_LIMITS, ...hostile.limits };
      const parsed = await parseInput(hostile.build(), `${name}.bin`, limits);

      if (hostile.expected !== 'parse') {
        expect(parsed.reports).toEqual([]);
        expect(parsed.errors.map((error) => error.code)).toContain(hostile.expected);
        for (const error of parsed.errors) expect(error.message).toContain(`${name}.bin`);
        return;
      }

      expect(parsed.errors.map((error) => error.message)).toEqual([]);
      expect(parsed.reports).toHaveLength(1);
      const [report] = parsed.reports;
      if (hostile.check?.orgName) expect(report.metadata.orgName).toBe(hostile.check.orgName);
      if (hostile.check?.warning) expect(report.warnings.join(' ')).toMatch(hostile.check.warning);
    if (hostile.check?.records) expect(report.records).toHaveLength(hostile.check.records);
    },
  );
});
