/**
 * Wraps every method of an interface implementation that returns a promise with `around`,
 * which receives the method name and a thunk giving the original call's promise. Methods come
 * from the object and its prototype chain (class instances keep theirs); methods returning
 * anything else (plain values, async iterators) pass through unchanged. Used at boundaries to
 * translate driver errors and, in app.ts, to time and log calls, without repeating either in
 * each method.
 */
export function decorate<T extends object>(target: T, around: (method: string, call: () => Promise<unknown>) => Promise<unknown>): T {
  const wrapped: Record<string, unknown> = {};
  for (const name of methodNames(target)) {
    const fn = (target as Record<string, unknown>)[name];
    if (typeof fn !== 'function') {
      wrapped[name] = fn;
      continue;
    }
    wrapped[name] = (...args: unknown[]) => {
      const result: unknown = fn.apply(target, args);
      return result instanceof Promise ? around(name, () => result) : result;
    };
  }
  return wrapped as T;
}

/** Own and inherited property names, without Object.prototype's. */
function methodNames(target: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) if (name !== 'constructor') names.add(name);
  }
  return [...names];
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
