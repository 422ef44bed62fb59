import type { Logger } from '../runtime/logger.ts';

export type Repeating = {
  /** Ends the loop; resolves once the run in progress (if any) has finished. */
  stop(): Promise<void>;
  /** False while the last run failed: what /healthz reports. */
  ok(): boolean;
};

/**
 * Runs `work` until stopped: again at once when it answers 'more' (a backlog) or when `wake()` was
 * called since the run began, after `soonMs` when it answers 'soon' (work that waits on someone else),
 * otherwise after `intervalMs`. Wakes that come during a run fold into one more run after it; runs
 * never overlap. A failed run is logged and retried after `errorDelayMs`, wakes or not, so an outage of
 * PostgreSQL or Redis slows the loop down instead of ending it, and is not hammered by wakes.
 */
export function repeat(
  name: string,
  work: () => Promise<unknown>,
  options: { intervalMs: number; soonMs?: number; errorDelayMs?: number },
  log: Logger,
): Repeating & {
  /** Asks for a run now: at once if the loop is waiting, else right after the run in progress. */
  wake(): void;
} {
  const abort = new AbortController();
  let failing = false;
  let woken = false;
  let endPause: (() => void) | undefined;

  function pause(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', end);
        endPause = undefined;
        resolve();
      };
      const timer = setTimeout(end, ms);
      abort.signal.addEventListener('abort', end, { once: true });
      if (wakeable) endPause = end;
    });
  }

  async function loop(): Promise<void> {
    while (!abort.signal.aborted) {
      woken = false;
      let delay = options.intervalMs;
      let wakeable = true;
      try {
        const outcome = await work();
        if (outcome === 'more') delay = 0;
        else if (outcome === 'soon') delay = Math.min(options.soonMs ?? 10, delay);
        if (failing) log.info({ loop: name }, 'recovered');
        failing = false;
      } catch (error) {
        if (!failing) log.warn({ loop: name, err: (error as Error).message }, 'failed; retrying');
        failing = true;
        delay = options.errorDelayMs ?? 1_000;
        wakeable = false;
      }
      if (wakeable && woken) delay = 0;
      if (delay > 0 && !abort.signal.aborted) await pause(delay, wakeable);
    }
  }

  const running = loop();
  return {
    async stop() {
      abort.abort();
      await running;
    },
    ok: () => !failing,
    wake() {
      woken = true;
      endPause?.();
    },
  };
}
