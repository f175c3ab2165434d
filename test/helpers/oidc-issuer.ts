import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import { removeDir } from './server.ts';
import { selfSignedCert } from './tls.ts';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function signingKey(kid: string, alg: 'ES256' | 'RS256' = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * A real OIDC issuer for tests: HTTPS with a throwaway self-signed certificate (`caFile`, to
 * be trusted by the server through NODE_EXTRA_CA_CERTS), serving a discovery document and a
 * JWKS of the keys in `published`, and signing tokens the way a CI system does.
 */
export interface TestIssuer {
  url: string;
  caFile: string;
  ca: string;
  /** Keys served in the JWKS; tests may add or remove keys (rotation). */
  published: SigningKey[];
  /** Requests received, by path. */
  hits: Record<string, number>;
  /** When set and it returns true, it has handled (or deliberately ignored) the request. */
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean;
  sign(claims: JWTPayload, opts?: { key?: SigningKey; expiresIn?: string | number; issuedAt?: number; kid?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<TestIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-issuer-'));
  const { certFile, cert, key } = selfSignedCert(dir);
  const published = [await signingKey('key-1'), await signingKey('key-2', 'RS256')];
  const hits: Record<string, number> = {};
  let url = '';
  const server: Server = createServer({ cert, key }, (req, res) => {
    const path = req.url ?? '/';
    hits[path] = (hits[path] ?? 0) + 1;
    if (issuer.intercept?.(req, res)) return;
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/.well-known/openid-configuration') return json({ issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ['ES256', 'RS256'] });
    if (path === '/jwks') return json({ keys: issuer.published.map((k) => k.publicJwk) });
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuer: TestIssuer = {
    url,
    caFile: certFile,
    ca: cert,
    published,
    hits,
    async sign(claims, opts = {}) {
      const k = opts.key ?? published[0]!;
      return new SignJWT({ iss: url, ...claims })
        .setProtectedHeader({ alg: k.alg, kid: opts.kid ?? k.kid, typ: 'JWT' })
        .setIssuedAt(opts.issuedAt)
        .setExpirationTime(opts.expiresIn ?? '5m')
        .sign(k.privateKey);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await removeDir(dir);
    },
  };
  return issuer;
}
