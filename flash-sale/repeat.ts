import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../runtime/logger.ts';

export type Repeating = {
  /** Ends the loop; resolves once the run in progress (if any) has finished. */
  stop(): Promise<void>;
  /** False while the last run failed: what /healthz reports. */
  ok(): boolean;
};

/**
 * Runs `work` until stopped: again at once when it answers 'more' (a backlog), otherwise after
 * `intervalMs`. A failed run is logged and retried after `errorDelayMs`, so an outage of PostgreSQL or
 * Redis slows the loop down instead of ending it. One run at a time, never overlapping.
 */
export function repeat(
  name: string,
  work: () => Promise<unknown>,
  options: { intervalMs: number; errorDelayMs?: number },
  log: Logger,
): Repeating {
  const abort = new AbortController();
  let failing = false;

  async function loop(): Promise<void> {
    while (!abort.signal.aborted) {
      let delay = options.intervalMs;
      try {
        if ((await work()) === 'more') delay = 0;
        if (failing) log.info({ loop: name }, 'recovered');
        failing = false;
      } catch (error) {
        if (!failing) log.warn({ loop: name, err: (error as Error).message }, 'failed; retrying');
        failing = true;
        delay = options.errorDelayMs ?? 1_000;
      }
      if (delay > 0) await sleep(delay, undefined, { signal: abort.signal }).catch(() => {});
    }
  }

  const running = loop();
  return {
    async stop() {
      abort.abort();
      await running;
    },
    ok: () => !failing,
  };
}
