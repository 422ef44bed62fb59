import http from 'node:http';
import type { FuzzRequest } from './generate.ts';

export type Outcome = { request: FuzzRequest; status: number; ms: number; body: string; problems: string[] };

/**
 * Sends one request over real HTTP, as written: node:http sends the path and header bytes as given. A
 * body over the server's limit goes on a connection of its own: the server may answer 413 and close the
 * connection without reading the rest (RFC 9110 allows it), which must not break pooled connections.
 */
export async function send(
  agent: http.Agent,
  port: number,
  request: FuzzRequest,
  bodyLimitBytes: number,
): Promise<Omit<Outcome, 'problems'>> {
  const oversize = (request.body?.length ?? 0) > bodyLimitBytes;
  const first = await sendOnce(oversize ? false : agent, port, request);
  // A pooled connection the server had just closed: the request never reached it. Once more, on a new one.
  if (first.status === 0 && !oversize) return sendOnce(false, port, request);
  return first;
}

function sendOnce(agent: http.Agent | false, port: number, request: FuzzRequest): Promise<Omit<Outcome, 'problems'>> {
  const started = performance.now();
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...request.headers };
    if (request.body !== undefined) headers['content-length'] = request.body.length;
    const req = http.request(
      { host: '127.0.0.1', port, method: request.method, path: request.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            request,
            status: res.statusCode ?? 0,
            ms: performance.now() - started,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    // Status 0: the connection closed before an answer (or node:http refused to send the request).
    req.on('error', (error) =>
      resolve({ request, status: 0, ms: performance.now() - started, body: `connection closed: ${error.message}` }),
    );
    req.end(request.body);
  });
}

/** What is wrong with an answer: a 5xx, an error body not in the documented shape, an invalid write taken. */
export function judge(outcome: Omit<Outcome, 'problems'>, bodyLimitBytes: number): string[] {
  const { request, status, body } = outcome;
  const problems: string[] = [];
  // Closing the connection on a body over the limit is an answer HTTP allows; anything else needs one.
  if (status === 0 && (request.body?.length ?? 0) <= bodyLimitBytes) problems.push(body);
  if (status >= 500) problems.push(`answered ${status}`);
  if (request.mustFail && status >= 200 && status < 300) problems.push(`accepted a request that must fail (${status})`);
  if (status >= 400 && request.method !== 'HEAD') {
    const shape = errorShapeProblem(body);
    if (shape) problems.push(shape);
  }
  return problems;
}

function errorShapeProblem(text: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `error body is not JSON: ${JSON.stringify(text.slice(0, 80))}`;
  }
  const error = (parsed as { error?: Record<string, unknown> })?.error;
  const keys = parsed && typeof parsed === 'object' ? Object.keys(parsed) : [];
  if (!error || typeof error !== 'object' || keys.length !== 1)
    return `error body is not { error }: ${text.slice(0, 80)}`;
  if (Object.keys(error).sort().join() !== 'code,details,message') {
    return `error has keys ${Object.keys(error).join(', ')}, not code, message, details`;
  }
  if (typeof error.code !== 'string' || typeof error.message !== 'string')
    return 'error code or message is not a string';
  if (error.details !== null && typeof error.details !== 'object') return 'error details is neither null nor an object';
  return null;
}

/**
 * A curl command that sends the same bytes. Keys are replaced by shell variables (the run's keys are
 * new each time); ids are the run's own. A long body is written to a file (`bodyFile` names it).
 */
export function curlFor(request: FuzzRequest, keys: Record<string, string>, bodyFile: () => string): string {
  const withKeys = (value: string) => {
    let quoted = shellQuote(value);
    for (const [name, key] of Object.entries(keys)) quoted = quoted.split(key).join(`'"$${name}"$'`);
    return quoted;
  };
  const parts = ['curl -sS -g --path-as-is -X', request.method, `"$BASE"${shellQuote(request.path)}`];
  for (const [name, value] of Object.entries(request.headers)) parts.push('-H', withKeys(`${name}: ${value}`));
  if (request.body !== undefined && request.body.length > 0) {
    if (request.body.length > 2_000) return `${parts.join(' ')} --data-binary @${bodyFile()}`;
    parts.push('--data-binary', shellQuote(request.body.toString('latin1')));
  }
  return parts.join(' ');
}

/** Bash ANSI-C quoting, byte by byte (latin1), so NUL aside every byte survives the shell. */
function shellQuote(value: string): string {
  let out = "$'";
  for (const ch of value) {
    const code = ch.charCodeAt(0);
    if (code === 0x27 || code === 0x5c) out += `\\${ch}`;
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else out += `\\x${(code & 0xff).toString(16).padStart(2, '0')}`;
  }
  return `${out}'`;
}
