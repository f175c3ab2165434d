import type { Logger } from 'pino';
import type { MetadataStore } from '../store/metadata-store.ts';

/** Lines kept per flush, and the longest a line may be (apt can print very long ones). */
const BATCH = 200;
const MAX_LINE = 4096;
const FLUSH_MS = 500;

/**
 * The build log of a compose, written to the metadata store in batches (every FLUSH_MS or
 * BATCH lines), so `GET /composes/{id}/logs` on any instance follows it while it builds. A
 * failed write is logged and the lines dropped: the log must never fail the build.
 */
export function composeLogSink(deps: { store: Pick<MetadataStore, 'appendComposeLog'>; composeId: string; log: Logger }) {
  let pending: string[] = [];
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    if (pending.length === 0) return writing;
    const lines = pending;
    pending = [];
    writing = writing
      .then(() => deps.store.appendComposeLog({ id: deps.composeId, lines }))
      .catch((err: unknown) => deps.log.warn({ err, composeId: deps.composeId }, 'compose log lines not stored'));
    return writing;
  };
  const timer = setInterval(() => void flush(), FLUSH_MS);
  return {
    line(text: string) {
      // U+0000 cannot be stored in PostgreSQL text; tools print it only by accident.
      for (const raw of text.split('\n')) {
        const line = raw.replaceAll('\u0000', '\ufffd');
        pending.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
      }
      if (pending.length >= BATCH) void flush();
    },
    /** Stores every line given so far (before the compose moves to a final state, so followers see them all). */
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
