/**
 * Column values ↔ domain values, for every row mapping of the SQL store. Times are epoch
 * milliseconds and sizes bytes, as bigint columns some drivers hand back as strings; a null
 * column is an absent field.
 */
export const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v));
export const date = (v: number | string): Date => new Date(num(v));
export const optNum = (v: number | string | null): number | undefined => (v === null ? undefined : num(v));
export const optDate = (v: number | string | null): Date | undefined => (v === null ? undefined : date(v));
export const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** Drops keys whose value is undefined, so absent columns are absent fields (not `key: undefined`). */
export const compact = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
