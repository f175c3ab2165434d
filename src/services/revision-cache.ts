/**
 * Values read from the catalog, kept until the catalog's revision changes: the one counter every
 * instance shares and every publication and alias change moves, in the same transaction. Each
 * read asks for the revision (one query) and answers from memory while it is unchanged, so a
 * change made through any instance is seen by the next read everywhere. Only what such a change
 * can alter may be cached (published state); errors are never kept.
 */
export function createRevisionCache(revision: () => Promise<{ revision: number }>, limit = 10_000) {
  let at = -1;
  const entries = new Map<string, unknown>();
  return async function cached<T>(key: string, load: () => Promise<T>, keep: (value: T) => boolean = () => true): Promise<T> {
    const { revision: now } = await revision();
    if (now !== at) {
      entries.clear();
      at = now;
    }
    if (entries.has(key)) return entries.get(key) as T;
    const value = await load();
    // Loaded while the revision moved on: answered, but not kept under the older revision.
    if (keep(value) && at === now) {
      if (entries.size >= limit) entries.clear();
      entries.set(key, value);
    }
    return value;
  };
}
