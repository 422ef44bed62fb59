import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listMigrations } from './migrate.ts';

// A migration that has landed has run on somebody's database: editing it changes nothing there and
// splits the schema in two. sql/migrations/SHA256SUMS records each landed file (`sha256sum` format, so
// `cd sql/migrations && sha256sum -c SHA256SUMS` checks it too); a schema change is a new numbered file,
// added to the table in the commit that adds it.

const dir = join(import.meta.dirname, 'migrations');

async function recorded(): Promise<Map<string, string>> {
  const text = await readFile(join(dir, 'SHA256SUMS'), 'utf8');
  return new Map(
    text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [hash, file] = line.split(/\s+\*?/, 2);
        return [file!, hash!];
      }),
  );
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(join(dir, file)))
    .digest('hex');
}

describe('landed migrations', () => {
  it('are unchanged since they landed', async () => {
    const sums = await recorded();
    const changed: string[] = [];
    for (const [file, hash] of sums) {
      const now = await sha256(file).catch(() => 'missing');
      if (now !== hash) changed.push(`${file} (${now === 'missing' ? 'deleted' : 'edited'})`);
    }
    expect(changed, 'landed migrations are frozen: put the change in a new numbered migration').toEqual([]);
  });

  it('are all recorded in SHA256SUMS', async () => {
    const sums = await recorded();
    const unrecorded = (await listMigrations()).filter((file) => !sums.has(file));
    expect(unrecorded, 'add each new migration: cd sql/migrations && sha256sum NNN_name.sql >> SHA256SUMS').toEqual([]);
  });
});
