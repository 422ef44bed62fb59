import type { BackoffOptions } from 'bullmq';

// The contract between the API and the workers: queue names, job payloads, and each step's retry
// policy, defined once. A queue is named after the step it runs.

export const stepNames = ['validate', 'check-inventory', 'authorize-payment', 'reserve', 'ship', 'notify'] as const;
export type StepName = (typeof stepNames)[number];

export const DEAD_LETTER_QUEUE = 'dead-letter';

export type StepJobData = { orderId: string };

export type DeadLetterJobData = {
  orderId: string;
  step: StepName;
  errorCode: string;
  message: string;
  attempts: number;
};

export type StepPolicy = { attempts: number; backoff: BackoffOptions };

// Business failures never retry, whatever the attempts say (the processor ends them at once); these
// numbers bound how long a transient outage (provider down, database restarting) is ridden out.
export const stepPolicies: Record<StepName, StepPolicy> = {
  validate: { attempts: 5, backoff: { type: 'exponential', delay: 500, jitter: 0.5 } },
  'check-inventory': { attempts: 5, backoff: { type: 'exponential', delay: 500, jitter: 0.5 } },
  'authorize-payment': { attempts: 6, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 } },
  reserve: { attempts: 6, backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 } },
  ship: { attempts: 8, backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 } },
  notify: { attempts: 8, backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 } },
};

/** BullMQ job ids may not contain ':'; order ids are UUIDs, so `<order>-<step>` is safe and unique. */
export function stepJobId(orderId: string, step: StepName): string {
  return `${orderId}-${step}`;
}
