import { DomainError, isDomainError } from '../domain/errors.ts';

/** Renames a store `conflict` with a message that says what already exists. */
export async function onConflict<T>(work: Promise<T>, code: string, detail: string): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (isDomainError(e) && e.kind === 'conflict') throw new DomainError('conflict', code, detail);
    throw e;
  }
}
