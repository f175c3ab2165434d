import assert from 'node:assert/strict';
import type { ApiClient } from './client.ts';

/** Creates a principal with the given roles and a ten-minute API token for it (imgsrv /v1 auth API); returns the token. */
export async function principalToken(api: ApiClient, roles: string[], displayName = `test ${roles.join('+') || 'no roles'}`): Promise<string> {
  const created = await api.post('/v1/auth/principals', { kind: 'service', display_name: displayName });
  assert.equal(created.status, 201);
  for (const role of roles) assert.equal((await api.put(`/v1/auth/principals/${created.json.id}/roles/${role}`)).status, 204);
  const issued = await api.post(`/v1/auth/principals/${created.json.id}/api-tokens`, { expires_at: new Date(Date.now() + 600_000).toISOString() });
  assert.equal(issued.status, 201);
  return issued.json.plaintext;
}
