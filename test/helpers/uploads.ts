import { uploadBytes as uploadViaClient } from '../../src/client/upload.ts';
import type { ApiClient } from './client.ts';
import { sha256 } from './bytes.ts';

/** Polls an upload session until it reaches one of `states`, through the project's client. */
export async function waitForUpload(api: ApiClient, id: string, states: string[] = ['ready', 'failed'], timeoutMs = 30_000) {
  return api.client().waitForUpload(id, { states, timeoutMs });
}

/** The publishing flow's upload steps (begin, PUT each part, complete, wait for `ready`), as the client does them. */
export async function uploadBytes(api: ApiClient, bytes: Buffer, opts: { parts?: number } = {}) {
  const digest = sha256(bytes);
  const partSize = Math.max(1, Math.ceil(bytes.length / (opts.parts ?? 1)));
  const session = await uploadViaClient(api.client(), { digest, size: bytes.length, read: (start, end) => bytes.subarray(start, end) }, { partSize, parallel: 1, timeoutMs: 30_000 });
  return { digest, session };
}
