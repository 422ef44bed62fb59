import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

// npm run test:fuzz [-- --seed N] [--count N]: runs test/fuzz/*.fuzz.ts under vitest (so it gets the
// tests' database template and harness), then prints the run's table. Exits non-zero on any violation.

const { values } = parseArgs({
  options: { seed: { type: 'string' }, count: { type: 'string', default: '5000' } },
});
const seed = values.seed ?? String(Math.floor(Math.random() * 2 ** 31));
const count = values.count;
if (!/^\d+$/.test(seed) || !/^[1-9]\d*$/.test(count)) {
  console.error('usage: npm run test:fuzz -- [--seed <non-negative integer>] [--count <positive integer>]');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'orderflow-fuzz-'));
const vitest = join(import.meta.dirname, '../../node_modules/.bin/vitest');
const run = spawnSync(vitest, ['run', '--config', join(import.meta.dirname, 'vitest.config.ts')], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_SEED: seed, FUZZ_COUNT: count, FUZZ_ARTIFACTS: dir },
});
try {
  console.log(`\n${readFileSync(join(dir, 'report.txt'), 'utf8')}`);
} catch {
  console.log(`\nno report (the run did not get that far); seed ${seed}`);
}
// Long request bodies of violations are kept there for their curl commands.
if (run.status === 0) rmSync(dir, { recursive: true, force: true });
else console.log(`\nfiles of this run: ${dir}`);
process.exit(run.status ?? 1);
