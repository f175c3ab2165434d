import assert from 'node:assert/strict';
import type { ApiResponse } from './client.ts';

/** A `503` problem with a detail (matching `detail` when given): what a request gets while a backing service is down. */
export function assertUnavailable(res: ApiResponse, what: string, detail?: RegExp): void {
  assert.equal(res.status, 503, `${what}: ${res.status} ${JSON.stringify(res.json)}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
  assert.ok(res.json.detail, what);
  if (detail) assert.match(res.json.detail, detail, what);
}

/** Polls `check` every 100 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
