// Orders are identified by UUIDs (PostgreSQL's uuid type, made by randomUUID): one pattern for every check.

/** A UUID in its canonical text form, in either case. */
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string): boolean => uuidPattern.test(s);
