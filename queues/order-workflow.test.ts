import type { FlowJob } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { canTransition, type OrderStatus } from '../domain/order-status.ts';
import {
  compensationOrder,
  firstStep,
  flowAfter,
  hasChildren,
  parseReturnStep,
  returnJobOptions,
  stepJobId,
  stepNames,
  stepReplayJob,
  steps,
} from './order-workflow.ts';

const ref = { orderId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', generation: 2, round: 1 };

/** The flow as a readable tree: `name(child, child)`, with each job's id and failure option checked. */
function shape(job: FlowJob | NonNullable<FlowJob['children']>[number], root = false): string {
  expect(job.queueName).toBe(job.name);
  expect(job.opts?.jobId).toBe(stepJobId(ref, job.name as never));
  expect(job.opts?.failParentOnFailure).toBe(root ? undefined : true);
  const children = job.children ?? [];
  return children.length === 0 ? job.name : `${job.name}(${children.map((c) => shape(c)).join(', ')})`;
}

describe('the order workflow', () => {
  it('builds, after validation, the flow notify ← ship ← capture ← reserve ← (check-inventory ∥ authorize-payment)', () => {
    const flow = flowAfter(firstStep, { ...ref, order: { id: ref.orderId } });
    expect(flow).toBeDefined();
    expect(shape(flow!, true)).toBe('notify(ship(capture(reserve(check-inventory, authorize-payment))))');
    expect(flow!.data).toEqual({ ...ref, order: { id: ref.orderId } });
  });

  it('says which steps have children in the flow, as the flow built has them', () => {
    const parents: string[] = [];
    const walk = (job: FlowJob | NonNullable<FlowJob['children']>[number]) => {
      if ((job.children ?? []).length > 0) parents.push(job.name);
      for (const child of job.children ?? []) walk(child);
    };
    walk(flowAfter(firstStep, ref)!);
    expect(stepNames.filter(hasChildren)).toEqual(parents.reverse());
  });

  it.each(stepNames.filter((name) => name !== firstStep))('adds nothing after %s', (name) => {
    expect(flowAfter(name, ref)).toBeUndefined();
  });

  it('starts with validate and lists every step once, in order', () => {
    expect(firstStep).toBe('validate');
    expect(stepNames).toEqual([
      'validate',
      'check-inventory',
      'authorize-payment',
      'reserve',
      'capture',
      'ship',
      'notify',
    ]);
  });

  it('undoes effects in the reverse of the workflow: label, capture, reservation, authorization', () => {
    expect(compensationOrder).toEqual(['ship', 'capture', 'reserve', 'authorize-payment']);
  });

  it('moves an order along legal edges of the state machine, whichever of the pair finishes first', () => {
    const status = (name: (typeof stepNames)[number]) => steps[name].status;
    for (const pair of [
      ['check-inventory', 'authorize-payment'],
      ['authorize-payment', 'check-inventory'],
    ] as const) {
      const path = ['validate', ...pair, 'reserve', 'capture', 'ship', 'notify'] as const;
      let current: OrderStatus = 'PENDING';
      for (const name of path) {
        const next = status(name);
        if (next === undefined) continue;
        expect(canTransition(current, next), `${current} → ${next} after ${name}`).toBe(true);
        current = next;
      }
      expect(current).toBe('COMPLETED');
    }
  });

  it('declares only steps after the last one with effects as after fulfilment, ending in COMPLETED', () => {
    const lastWithEffects = Math.max(...compensationOrder.map((name) => stepNames.indexOf(name)));
    const afterFulfilment = stepNames.filter((name) => steps[name].afterFulfilment);
    expect(afterFulfilment).toEqual(['notify']);
    for (const name of afterFulfilment) {
      expect(stepNames.indexOf(name), name).toBeGreaterThan(lastWithEffects);
      expect(steps[name].compensates, name).toBeUndefined();
    }
    expect(steps[stepNames.at(-1)!].status).toBe('COMPLETED');
  });

  it('replays one step alone under the round it is given, with the step policy', () => {
    const job = stepReplayJob(ref, 'notify');
    expect(job).toMatchObject({ name: 'notify', queueName: 'notify', data: ref });
    expect(job.opts).toMatchObject({ jobId: stepJobId(ref, 'notify'), attempts: steps.notify.policy.attempts });
  });

  it('gives every step a retry policy with a timeout', () => {
    for (const name of stepNames) {
      expect(steps[name].policy.attempts).toBeGreaterThan(1);
      expect(steps[name].policy.timeoutMs).toBeGreaterThan(0);
    }
  });
});

describe('the return steps', () => {
  it('are named in the ledger as return-<step>:<rma>, which reads back as the job it was', () => {
    expect(parseReturnStep('return-refund:RMA-0A1B2C3D4E5F')).toEqual({ step: 'refund', rma: 'RMA-0A1B2C3D4E5F' });
    expect(parseReturnStep('return-label:RMA-0A1B2C3D4E5F')).toEqual({ step: 'label', rma: 'RMA-0A1B2C3D4E5F' });
    expect(parseReturnStep('notify')).toBeNull();
    expect(parseReturnStep('return-refund:not-an-rma')).toBeNull();
  });

  it('get one job id per step and return, and a new one per replay', () => {
    const data = { step: 'restock' as const, rma: 'RMA-0A1B2C3D4E5F' };
    expect(returnJobOptions(data).jobId).toBe('return-restock-RMA-0A1B2C3D4E5F');
    expect(returnJobOptions(data, 'replay-7')).toMatchObject({ jobId: 'return-restock-RMA-0A1B2C3D4E5F-replay-7' });
    expect(returnJobOptions(data).attempts).toBeGreaterThan(1);
  });
});
