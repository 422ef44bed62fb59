// When does a flash sale's admission gate close (SPEC §4: "orders are admitted no faster than the
// pipeline completes them")? A pure decision over two measurements the flash-sale controller makes:
// how many units of hot SKUs were admitted and are still waiting for their reservation (the backlog in
// front of the pipeline), and how many orders per second the pipeline finished lately.
//
// While the backlog is less than `backlogSeconds` of the pipeline's work, the pipeline keeps up and the
// gate stays open: the completion rate then measures the demand, not what the pipeline could do, so it
// must not hold the demand back. Once the backlog is larger, orders for hot SKUs are admitted at the
// completion rate (never under `minRate`, so a stalled pipeline still lets a trickle through and
// recovers), with a burst of one second's worth. The same backlog also caps each hot SKU's admission
// counter (`backlogCap`), so the gate holds from the first order of a sale.

export type GateSettings = {
  /** Orders per second the gate lets through at the least. */
  minRate: number;
  /** The backlog, in seconds of the pipeline's work, above which the gate closes to the completion rate. */
  backlogSeconds: number;
};

export type GateInput = {
  /** Units of hot SKUs admitted at the door and not reserved yet. */
  backlog: number;
  /** Orders the pipeline finished per second, over the last few seconds. */
  completionsPerSecond: number;
};

/** Null: the gate is open. Otherwise the token bucket's refill rate and size. */
export type Gate = { ratePerSecond: number; burst: number } | null;

export function decideGate(input: GateInput, settings: GateSettings): Gate {
  const rate = Math.max(settings.minRate, input.completionsPerSecond);
  if (input.backlog <= rate * settings.backlogSeconds) return null;
  return { ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate)) };
}

/**
 * The most units of one hot SKU that may be admitted and wait for their reservation at once: the same
 * `backlogSeconds` of the pipeline's work, enforced by the admission counter on every order rather than
 * judged by the controller every few seconds. It is what holds a sale's first second, when thousands
 * of buyers arrive at once and no completion rate has been measured yet: without it every unit is
 * admitted in the first few milliseconds, and the whole sale lands on the pipeline at once.
 */
export function backlogCap(completionsPerSecond: number, settings: GateSettings): number {
  const rate = Math.max(settings.minRate, completionsPerSecond);
  return Math.max(1, Math.floor(rate * settings.backlogSeconds));
}
