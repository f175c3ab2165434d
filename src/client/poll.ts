export interface PollOptions {
  /** Give up after this long (default 10 minutes: a multi-GB upload is verified in that time). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Reads `get` until `done` holds, waiting 25 ms at first and up to 1 s between reads, so a
 * quick answer is seen at once and a long wait costs the server little.
 * @throws when `timeoutMs` passes or `signal` fires first.
 */
export async function poll<T>(get: () => Promise<T>, done: (value: T) => boolean, opts: PollOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
  for (let wait = 25; ; wait = Math.min(1000, wait * 2)) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() + wait > deadline) throw new Error(`still not done after ${opts.timeoutMs ?? 600_000} ms: ${JSON.stringify(value).slice(0, 300)}`);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, wait);
      opts.signal?.addEventListener('abort', () => (clearTimeout(timer), reject(opts.signal!.reason as Error)), { once: true });
    });
  }
}
