import type { BackoffOptions } from 'bullmq';
import type { NewDeadLetter } from '../sql/dead-letters.ts';

// The contract between the API and the workers: queue names, job payloads, and each step's retry
// policy, defined once. A queue is named after the step it runs.

export const stepNames = ['validate', 'check-inventory', 'authorize-payment', 'reserve', 'ship', 'notify'] as const;
export type StepName = (typeof stepNames)[number];

export const DEAD_LETTER_QUEUE = 'dead-letter';
/** Periodic and scheduled work: the reconciler, order retries, compensation of cancelled orders. */
export const MAINTENANCE_QUEUE = 'maintenance';

/**
 * Which run of which order a job is for. `generation` changes when a failed order is retried (its steps
 * run again from scratch); `round` changes when the reconciler re-enqueues a stuck order (its steps
 * continue where they stopped: done steps return their stored output).
 */
export type OrderRef = { orderId: string; generation: number; round: number };
export type StepJobData = OrderRef;

/** The dead letter as it is recorded (sql/dead-letters.ts): the job carries it whole. */
export type DeadLetterJobData = NewDeadLetter;

export type MaintenanceJobData =
  | { kind: 'reconcile' }
  | { kind: 'retry-order'; deadLetterId: number }
  | { kind: 'compensate-order'; orderId: string; generation: number };

export type StepPolicy = { attempts: number; backoff: BackoffOptions; timeoutMs: number };

// Business failures never retry, whatever the attempts say (the processor ends them at once); these
// numbers bound how long a transient outage (provider down, database restarting) is ridden out before
// the order goes to the dead letters: about 10 s for the fast steps, a minute or more for the providers.
// timeoutMs bounds one attempt; it is above the provider timeouts so that they fire first.
export const stepPolicies: Record<StepName, StepPolicy> = {
  validate: { attempts: 5, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, timeoutMs: 30_000 },
  'check-inventory': { attempts: 5, backoff: { type: 'exponential', delay: 500, jitter: 0.5 }, timeoutMs: 30_000 },
  'authorize-payment': { attempts: 6, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 }, timeoutMs: 45_000 },
  reserve: { attempts: 6, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 }, timeoutMs: 45_000 },
  ship: { attempts: 8, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 }, timeoutMs: 30_000 },
  notify: { attempts: 8, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 }, timeoutMs: 30_000 },
};

/** BullMQ job ids may not contain ':'; order ids are UUIDs, so these are safe and unique. */
export function stepJobId(ref: OrderRef, step: StepName): string {
  return `${ref.orderId}-g${ref.generation}-r${ref.round}-${step}`;
}
