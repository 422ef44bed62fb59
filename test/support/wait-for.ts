import { expect, onTestFailed } from 'vitest';

type Waiting = { what: string; last: () => unknown; stopped: boolean };

const waiting = new Set<Waiting>();
let reportingFor: string | undefined;

/**
 * Reads until `done` accepts what was read (by default: until it is truthy) and returns that value.
 * There is no deadline here: a busy machine only makes the wait longer, and the test's timeout is the
 * one backstop. When the test fails while this waits (its timeout, or another assertion), the failure
 * says what was awaited and what was read last, and the reading stops.
 */
export async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean = Boolean,
  options: { intervalMs?: number; describe?: (value: T) => unknown } = {},
): Promise<T> {
  reportFailuresOfThisTest();
  let last: { value: T } | undefined;
  const wait: Waiting = {
    what,
    last: () => (last === undefined ? 'nothing yet' : (options.describe ?? ((v) => v))(last.value)),
    stopped: false,
  };
  waiting.add(wait);
  try {
    for (;;) {
      // The test is over: its waits are abandoned, never settled, so none of it runs after the test.
      if (wait.stopped) return new Promise<never>(() => {});
      const value = await read();
      if (done(value)) return value;
      last = { value };
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
    }
  } finally {
    waiting.delete(wait);
  }
}

/** Registers, once per test, the report of the waits still open when the test fails. */
function reportFailuresOfThisTest(): void {
  const { currentTestName, testPath } = expect.getState();
  if (currentTestName === undefined) return; // in a hook: the hook's own timeout reports it
  const test = `${testPath} > ${currentTestName}`;
  if (reportingFor === test) return;
  reportingFor = test;
  onTestFailed(({ task }) => {
    const open = [...waiting];
    for (const wait of open) wait.stopped = true;
    if (open.length === 0) return;
    const note = open.map((w) => `still waiting for ${w.what}; last read: ${JSON.stringify(w.last())}`).join('\n');
    for (const error of task.result?.errors ?? []) error.message = `${error.message}\n${note}`;
  });
}
