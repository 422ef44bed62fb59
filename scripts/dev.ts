import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { styleText } from 'node:util';
import pg from 'pg';
import { migrate } from '../sql/migrate.ts';
import { startPostgres, startRedis } from './local-servers.ts';
import { commandOf, sleep, stopProcess } from './processes.ts';
import { type DemoKeys, seedDemo } from './seed.ts';
import { startWatchdog, type Watchdog } from './watchdog.ts';

// `npm run dev`: the whole system on one machine, no Docker. PostgreSQL and Redis are started here unless
// DATABASE_URL / REDIS_URL point at running ones. Every process this script starts runs in a process
// group of its own, so a Ctrl-C in the terminal reaches only this script, which then stops things in
// order: api, worker, flash-sale, sandbox (letting jobs drain), then Redis, then PostgreSQL.
// Whatever way this script ends, nothing it started outlives it: a signal (SIGINT, SIGTERM, SIGHUP)
// stops everything; so does the death of its parent (npm killed); if this script itself is killed
// (kill -9), its watchdog stops everything. The next run waits for that watchdog, and stops servers
// an earlier run left on the data directory.

const root = join(import.meta.dirname, '..');
/** Any id does for the fake Bedrock, which answers every model alike. */
const DEMO_MODEL_ID = 'orderflow.fake-assistant-v1:0';
const env = process.env;
const settings = {
  databaseUrl: env.DATABASE_URL || undefined,
  redisUrl: env.REDIS_URL || undefined,
  dataDir: resolve(env.DEV_DATA_DIR || join(root, '.data')),
  pgPort: Number(env.DEV_PG_PORT || 54329),
  redisPort: Number(env.DEV_REDIS_PORT || 63799),
  apiPort: Number(env.PORT || 3000),
  gatewayPort: Number(env.SANDBOX_GATEWAY_PORT || 4001),
  carrierPort: Number(env.SANDBOX_CARRIER_PORT || 4002),
  bedrockPort: Number(env.SANDBOX_BEDROCK_PORT || 4003),
  // The assistant talks to the sandbox's fake Bedrock unless BEDROCK_ENDPOINT is set (set it empty, with
  // BEDROCK_MODEL_ID, AWS_REGION and AWS credentials, for the real service).
  bedrockEndpoint: env.BEDROCK_ENDPOINT,
  bedrockModelId: env.BEDROCK_MODEL_ID || DEMO_MODEL_ID,
  // The worker's own drain deadline, kept under the 10 s after which this script kills it.
  workerShutdownTimeoutMs: env.WORKER_SHUTDOWN_TIMEOUT_MS || '8000',
};
const KILL_AFTER_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;
const PREVIOUS_RUN_TIMEOUT_MS = 30_000;
const runFile = join(settings.dataDir, 'dev.pid');

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

/** A signal to the child's whole process group (it was spawned detached, so it leads one). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the child's group, then SIGKILL if it is still there after KILL_AFTER_MS. */
async function terminate(child: ChildProcess, name: string): Promise<void> {
  if (!running.has(child)) return;
  const gone = once(child, 'exit');
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => {
    log('dev', `${name} still running after ${KILL_AFTER_MS / 1000} s, killing it`, 'yellow');
    signalGroup(child, 'SIGKILL');
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

type RunRecord = { runner?: number; watchdog?: number; services?: number[] };
const writeRunRecord = (record: RunRecord) => writeFile(runFile, `${JSON.stringify(record)}\n`);

/**
 * One run per data directory. A run that was killed leaves its watchdog stopping what it started:
 * wait for it, so that its servers and ports are free before this run starts its own. If the
 * watchdog was killed too, stop the services that run left (its servers are stopped by
 * startPostgres and startRedis).
 */
async function claimDataDir(watchdog: Watchdog): Promise<void> {
  await mkdir(settings.dataDir, { recursive: true });
  const previous = await readFile(runFile, 'utf8').then(
    (text) => JSON.parse(text) as RunRecord,
    () => ({}) as RunRecord,
  );
  if (previous.runner !== process.pid && commandOf(previous.runner)?.includes('dev.ts')) {
    throw new Error(`npm run dev is already running on ${settings.dataDir} (pid ${previous.runner})`);
  }
  if (previous.watchdog !== watchdog.pid && commandOf(previous.watchdog)?.includes('watchdog.ts')) {
    log('dev', `waiting for the watchdog of an earlier run (pid ${previous.watchdog}) to stop what that run started`);
    for (const deadline = Date.now() + PREVIOUS_RUN_TIMEOUT_MS; commandOf(previous.watchdog); await sleep(200)) {
      checkpoint();
      if (Date.now() > deadline) throw new Error(`the watchdog of an earlier run (pid ${previous.watchdog}) is stuck`);
    }
  }
  const leftovers = (previous.services ?? []).map((pid) => ({ pid, command: commandOf(pid) }));
  await Promise.all(
    leftovers
      .filter(({ command }) => command?.includes(root))
      .map(({ pid, command }) => {
        log('dev', `stopping ${command} (pid ${pid}), left running by an earlier run`);
        return stopProcess(pid, { group: true });
      }),
  );
  await writeRunRecord({ runner: process.pid, watchdog: watchdog.pid });
  stopSteps.push({ name: 'run file', stop: () => rm(runFile, { force: true }) });
}

async function startDevPostgres(watchdog: Watchdog): Promise<string> {
  const password = 'postgres';
  const server = await startPostgres({
    dataDir: join(settings.dataDir, 'postgres'),
    port: settings.pgPort,
    password,
    log: (line) => log('dev', line),
  });
  stopSteps.push({ name: 'postgres', stop: () => server.stop('fast') });
  const pid = await server.pid();
  if (pid) watchdog.stop({ name: 'postgres', pid, signal: 'SIGINT', killSignal: 'SIGQUIT', stage: 0 });
  log('dev', `PostgreSQL started on port ${server.port} (log: ${join(server.dataDir, 'server.log')})`);

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

async function startDevRedis(watchdog: Watchdog): Promise<string> {
  const dir = join(settings.dataDir, 'redis');
  const server = await startRedis({ dir, port: settings.redisPort, appendOnly: true, log: (line) => log('dev', line) });
  stopSteps.push({ name: 'redis', stop: server.stop });
  watchdog.stop({ name: 'redis', pid: server.pid() ?? -1, group: true, stage: 1 });
  log('dev', `Redis started on port ${server.port} (log: ${join(dir, 'server.log')})`);
  return server.url;
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
  for (const deadline = Date.now() + READY_TIMEOUT_MS; ; await sleep(200)) {
    checkpoint();
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (response?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS / 1000} s`);
  }
}

/** The assistant against the sandbox: its endpoint, a region, and credentials the fake accepts (it checks
 * only that requests are signed), so no AWS account or profile is needed, nor used. */
function fakeBedrockEnv(): Record<string, string | undefined> {
  return {
    BEDROCK_ENDPOINT: `http://127.0.0.1:${settings.bedrockPort}`,
    AWS_REGION: env.AWS_REGION || 'us-east-1',
    AWS_ACCESS_KEY_ID: 'sandbox',
    AWS_SECRET_ACCESS_KEY: 'sandbox',
    AWS_SESSION_TOKEN: undefined,
    // A bearer token would switch the SDK from request signing to bearer auth.
    AWS_BEARER_TOKEN_BEDROCK: undefined,
  };
}

function printBanner(api: string, seed: DemoKeys): void {
  const key = seed.customers[0]?.apiKey ?? '<customer key>';
  const width = Math.max(0, ...seed.customers.map((c) => c.name.length));
  const customers = seed.customers.map((c) => `    ${c.name.padEnd(width)}  ${c.apiKey}`).join('\n');
  const other = seed.customers[1]?.apiKey ?? '<another customer key>';
  const order = {
    region: 'eu',
    items: [{ sku: seed.skus[0] ?? '<sku>', quantity: 1 }],
    shippingAddress: { name: 'Ada Lovelace', line1: '1 Main St', city: 'London', postalCode: 'N1 9GU', country: 'GB' },
    payment: { token: '4242424242424242' },
  };
  const auth = `-H "Authorization: Bearer ${key}"`;
  const assistant =
    settings.bedrockEndpoint === undefined
      ? "the sandbox's fake Bedrock"
      : `Bedrock ${settings.bedrockModelId}${settings.bedrockEndpoint ? ` at ${settings.bedrockEndpoint}` : ''}`;
  process.stdout.write(`
${styleText('bold', 'orderflow is running')}
  API          ${api}
  Bull Board   ${api}/admin/queues   (user "admin", password: the admin key)
  admin key    ${seed.adminKey}
  customer keys (each sees only its own orders):
${customers}

  Place an order as ${seed.customers[0]?.name ?? 'the first customer'} (prints the answer and keeps the order id in $ORDER):
    ORDER=$(curl -s -X POST ${api}/orders ${auth} -H 'Content-Type: application/json' \\
      -H "Idempotency-Key: $(node -p 'crypto.randomUUID()')" \\
      -d '${JSON.stringify(order)}' \\
      | tee /dev/stderr | node -p 'JSON.parse(fs.readFileSync(0, "utf8")).id')
  Follow it until COMPLETED:
    curl -s ${api}/orders/$ORDER ${auth}
  Another customer's key gets 404 for it:
    curl -s ${api}/orders/$ORDER -H "Authorization: Bearer ${other}"
  Ask the support assistant (${assistant}), or chat in the browser at ${api}/chat/demo:
    curl -s -X POST ${api}/chat ${auth} -H 'Content-Type: application/json' -d '{"message":"where is my order?"}'

  Ctrl-C stops everything.

`);
}

let stopping = false;
async function stopEverything(watchdog: Watchdog): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const { name, stop } of stopSteps.reverse()) {
      await stop().catch((error: unknown) => log('dev', `stopping ${name} failed: ${error}`, 'red'));
    }
    await watchdog.done();
    log('dev', 'stopped');
    process.exit(exitCode ?? 0);
  }
  return new Promise(() => {});
}

let onStopRequested = () => {};
function requestStop(code: number, reason: string): void {
  if (exitCode !== undefined) return; // repeated signals (npm forwards Ctrl-C too) change nothing
  exitCode = code;
  log('dev', reason, code === 0 ? 'green' : 'red');
  log('dev', 'shutting down');
  onStopRequested();
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => requestStop(0, `${signal} received`));
  // A terminal that went away must not turn the shutdown into a crash.
  process.stdout.on('error', () => {});
  // npm killed (or whatever started this script): its pid is no longer our parent's.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) requestStop(0, `the parent process (pid ${parent}) exited`);
  }, 500).unref();
  // If this script dies of a bug, do not leave detached children behind (the watchdog would, too).
  process.on('exit', () => {
    for (const child of running) signalGroup(child, 'SIGTERM');
  });
  const watchdog = startWatchdog({ output: 'inherit' });
  onStopRequested = () => {
    if (startupDone) void stopEverything(watchdog);
  };
  try {
    await claimDataDir(watchdog);
    checkpoint();
    const databaseUrl = settings.databaseUrl ?? (await startDevPostgres(watchdog));
    checkpoint();
    const redisUrl = settings.redisUrl ?? (await startDevRedis(watchdog));
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
      // Deliveries to watch: the sandbox carrier moves each parcel a stage every few seconds (now and then
      // with a failed attempt first) and the worker asks it as often, so an order is delivered in under a minute.
      SANDBOX_DELIVERY_STAGE_MS: env.SANDBOX_DELIVERY_STAGE_MS || '4000',
      SANDBOX_EXCEPTION_RATE: env.SANDBOX_EXCEPTION_RATE || '0.05',
      TRACKING_POLL_MS: env.TRACKING_POLL_MS || '5000',
      SANDBOX_BEDROCK_PORT: String(settings.bedrockPort),
      BEDROCK_MODEL_ID: settings.bedrockModelId,
      ...(settings.bedrockEndpoint === undefined ? fakeBedrockEnv() : { BEDROCK_ENDPOINT: settings.bedrockEndpoint }),
    };
    const sandbox = spawnService('sandbox', 'sandbox/server.ts', 'blue', childEnv);
    const worker = spawnService('worker', 'workers/main.ts', 'magenta', childEnv);
    const api = spawnService('api', 'api/server.ts', 'cyan', childEnv);
    const flashSale = spawnService('flash', 'flash-sale/main.ts', 'yellow', childEnv);
    const services = [sandbox, worker, api, flashSale].map((child) => child.pid ?? -1);
    await writeRunRecord({ runner: process.pid, watchdog: watchdog.pid, services });
    watchdog.stop({ name: 'sandbox', pid: sandbox.pid ?? -1, group: true, stage: 2 });
    for (const [name, child] of [
      ['api', api],
      ['worker', worker],
      ['flash-sale', flashSale],
    ] as const) {
      watchdog.stop({ name, pid: child.pid ?? -1, group: true, stage: 3 });
    }
    // The sandbox goes last, so jobs draining in the worker can still reach the payment gateway and carrier.
    stopSteps.push({ name: 'sandbox', stop: () => terminate(sandbox, 'sandbox') });
    stopSteps.push({
      name: 'api, worker and flash-sale',
      stop: async () =>
        void (await Promise.all([terminate(api, 'api'), terminate(worker, 'worker'), terminate(flashSale, 'flash')])),
    });
    await waitForReady(`http://127.0.0.1:${settings.apiPort}/readyz`);
    startupDone = true;
    checkpoint(); // a stop requested since the last checkpoint found startupDone false
    printBanner(`http://localhost:${settings.apiPort}`, seed);
  } catch (error) {
    if (!(error instanceof Stopped))
      requestStop(1, `start-up failed: ${error instanceof Error ? error.message : error}`);
    await stopEverything(watchdog);
  }
}

await main();
