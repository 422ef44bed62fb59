// One error tree for the whole system. Each error carries a code from a closed union, whether a
// retry can help, and its cause. The API maps codes to HTTP statuses once (api/errors.ts); the
// workers use `retryable` to decide between a retry with backoff and ending the order.

export type ErrorCode =
  // the caller's mistakes (4xx, never retried)
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_flight'
  | 'payload_too_large'
  | 'unsupported_media_type'
  // PostgreSQL refused the data: a value it cannot hold, or a constraint (see DataRejectedError)
  | 'invalid_value'
  | 'constraint_violated'
  // business outcomes that end an order (permanent)
  | 'payment_declined'
  | 'out_of_stock'
  | 'invalid_order'
  | 'address_undeliverable'
  | 'order_not_active'
  | 'purchase_limit_exceeded'
  // a flash sale's door (SPEC §4): no units left to admit, or orders for hot SKUs arriving too fast
  | 'sold_out'
  | 'checkout_busy'
  // returns (SPEC §5): a confirmation token that does not create a return, or an item already returned
  | 'return_token_invalid'
  | 'return_token_wrong_order'
  | 'return_token_expired'
  | 'return_token_used'
  | 'already_returned'
  // an API key sent more requests than its budget per window (SPEC §7)
  | 'rate_limited'
  // a provider answered with something we did not expect (permanent, needs a human)
  | 'provider_rejected'
  // transient trouble (retried with backoff; 503 at the API)
  | 'provider_unavailable'
  | 'provider_timeout'
  | 'step_timeout'
  | 'database_unavailable'
  | 'queue_unavailable'
  // bugs
  | 'internal';

export type ErrorDetails = Record<string, unknown> | Array<Record<string, unknown>>;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: ErrorDetails | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retryable?: boolean; details?: ErrorDetails; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** The caller sent something we will not accept. Lists every problem in `details`. */
export class ValidationError extends AppError {
  constructor(message: string, details: Array<{ field: string; message: string }>) {
    super('validation_failed', message, { details });
    this.name = 'ValidationError';
  }
}

/** A business rule ends the order: declined card, no stock, undeliverable address. Never retried. */
export class BusinessError extends AppError {
  constructor(
    code:
      | 'payment_declined'
      | 'out_of_stock'
      | 'invalid_order'
      | 'address_undeliverable'
      | 'order_not_active'
      | 'purchase_limit_exceeded'
      | 'sold_out',
    message: string,
    details?: ErrorDetails,
  ) {
    super(code, message, { details });
    this.name = 'BusinessError';
  }
}

/**
 * PostgreSQL refused the data: a value it cannot hold (class 22: NUL, out-of-range date, bad syntax for
 * the type) or a constraint (class 23: unique, foreign key, check, not null). Raised by sql/ only. At the
 * API the data came from the caller, so it is a 4xx (the edge checks should have caught it first).
 * `retryable` stays true, as for any unclassified error inside a worker: there it is a race a retry
 * resolves (another attempt took the unique key) or a bug that gets the step's bounded retries and is
 * then parked for an operator, never a business outcome that ends the order at once.
 */
export class DataRejectedError extends AppError {
  /** The constraint PostgreSQL named, if any (for logs; not sent to callers). */
  readonly constraint: string | null;
  constructor(
    code: 'invalid_value' | 'constraint_violated',
    message: string,
    options: { cause: unknown; details?: ErrorDetails; constraint?: string | null },
  ) {
    super(code, message, { cause: options.cause, details: options.details, retryable: true });
    this.name = 'DataRejectedError';
    this.constraint = options.constraint ?? null;
  }
}

/** A dependency is down or slow: retrying later can succeed. */
export class TransientError extends AppError {
  constructor(
    code: 'provider_unavailable' | 'provider_timeout' | 'step_timeout' | 'database_unavailable' | 'queue_unavailable',
    message: string,
    options: { cause?: unknown; details?: ErrorDetails } = {},
  ) {
    super(code, message, { ...options, retryable: true });
    this.name = 'TransientError';
  }
}

/** Anything that is not an AppError is a bug until proven otherwise. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('internal', error instanceof Error ? error.message : String(error), { cause: error });
}
