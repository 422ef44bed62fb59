import { loadConfig, orExit } from '../config/index.ts';
import { createDeps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { watchLiveness } from './liveness.ts';
import { startWorkers } from './start-workers.ts';

const config = orExit(() => loadConfig());
const log = createLogger(config.logLevel, 'worker');
// The cache's connection is auto-pipelined: the invalidations of the many step commits that end
// together (sql/group-commit.ts) go to Redis in one write. BullMQ keeps a plain connection.
const deps = await createDeps(config, log, { autoPipelining: true });
const workers = await startWorkers(deps, deps.queues, {
  ...config.worker,
  reconcileEveryMs: config.reconciler.everyMs,
  stuckAfterMs: config.reconciler.stuckAfterMs,
  trackingPoll: config.tracking,
  returnSweep: config.returns,
  retryPolicy: config.orderRetry,
});
const liveness = watchLiveness(workers, deps.redis, {
  staleAfterMs: config.worker.staleAfterMs,
  port: config.worker.healthPort,
  registry: deps.registry,
});
log.info({ queues: config.worker.queues, concurrency: config.worker.concurrency }, 'worker started');

// SIGTERM (docker stop, kubectl, systemd): stop taking jobs, let the ones in flight finish, then exit.
// A job still running after the timeout is left to BullMQ's stalled-job check, which gives it to
// another worker; the step ledger makes that re-run safe.
let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'draining in-flight jobs');
  const timer = setTimeout(() => {
    log.error('in-flight jobs did not finish in time; exiting');
    process.exit(1);
  }, config.worker.shutdownTimeoutMs);
  liveness.server?.close();
  await Promise.all(workers.map((w) => w.close()));
  await deps.close();
  clearTimeout(timer);
  log.info('worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
