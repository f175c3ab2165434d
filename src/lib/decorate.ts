/**
 * Wraps every async method of an interface implementation with `around`, which receives the
 * method name and a thunk running the original call. Used at boundaries to translate driver
 * errors and, in app.ts, to time and log calls, without repeating either in each method.
 */
export function decorate<T extends object>(target: T, around: (method: string, call: () => Promise<unknown>) => Promise<unknown>): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(target)) {
    wrapped[name] = typeof fn === 'function' ? (...args: unknown[]) => around(name, () => fn(...args) as Promise<unknown>) : fn;
  }
  return wrapped as T;
}

/**
 * Marks a promise that is started now and awaited later as handled, so that a rejection
 * arriving before the `await` is not an unhandled rejection (which ends the process). The
 * caller still sees the rejection when it awaits the returned promise.
 */
export function started<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
