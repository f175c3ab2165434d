/**
 * One query answering many concurrent callers without ever answering one of them with a value
 * read before it asked: a caller joins the next query to start, never one already running. So
 * a change committed before a call starts is seen by that call (as with a query of its own),
 * while under load one query serves every caller that arrived during the previous one (or in
 * the same turn of the event loop). A query that never settles holds every later caller: the
 * query must have a timeout of its own (the PostgreSQL pool's statement timeout).
 */
export function freshReads<T>(query: () => Promise<T>): () => Promise<T> {
  let running = false;
  let waiting: { resolve(v: T): void; reject(e: unknown): void }[] = [];
  const start = () => {
    const batch = waiting;
    waiting = [];
    running = true;
    // A query that throws at once fails its batch like one that rejects.
    Promise.resolve().then(query).then(
      (v) => batch.forEach((w) => w.resolve(v)),
      (e: unknown) => batch.forEach((w) => w.reject(e)),
    ).finally(() => {
      running = false;
      if (waiting.length > 0) start();
    });
  };
  return () =>
    new Promise<T>((resolve, reject) => {
      waiting.push({ resolve, reject });
      // Started after the I/O events being handled now: the requests they carry share it.
      if (!running) {
        running = true;
        setImmediate(start);
      }
    });
}
