import assert from 'node:assert/strict';
import { DomainError } from '../../src/domain/errors.ts';

/** The fixed "now" of the conformance suites, and times relative to it. */
export const T0 = new Date('2026-11-23T10:00:00.000Z');
export const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

/** Rejects with a `DomainError` of this kind (and code, when given). */
export const rejectsWith = (p: Promise<unknown>, kind: string, code?: string) =>
  assert.rejects(p, (e: unknown) => e instanceof DomainError && e.kind === kind && (code === undefined || e.code === code));
