import { createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { DomainError } from '../domain/errors.ts';

/** Asymmetric JWS algorithms accepted for OIDC tokens: never `none`, never HMAC (whose key would be public). */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface OidcVerifierOptions {
  /** Bound on every request to an issuer (discovery document, JWKS). */
  timeoutMs: number;
  /** Allowed clock skew for `exp`, `nbf` and `iat`. */
  clockToleranceSeconds: number;
  /** Tokens issued longer ago than this are refused (`iat` is required). */
  maxTokenAgeSeconds: number;
  /** How long a discovery document (and the JWKS URL it names) is trusted. */
  discoveryTtlMs: number;
  /** Shortest time between two JWKS fetches caused by unknown `kid`s. */
  jwksCooldownMs: number;
  /** How long fetched keys are used before they are fetched again. */
  jwksMaxAgeMs: number;
  now: () => Date;
  /** The HTTP client (tests inject one that trusts their issuer's certificate). */
  fetch?: typeof fetch;
}

export interface UnverifiedToken {
  issuer: string;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

const invalid = (code: string, detail: string) => new DomainError('unauthenticated', code, detail);
const unreachable = (issuer: string, why: string, cause?: unknown) =>
  new DomainError('unavailable', 'oidc_issuer_unavailable', `the OIDC issuer ${issuer} could not be used to verify the token: ${why}`, { cause });

/**
 * Verifies OIDC ID tokens (JWTs) against their issuer: discovery document, then the JWKS it
 * names (both fetched over HTTPS with a timeout and a size bound, and cached; an unknown `kid`
 * refetches the JWKS, at most once per cooldown), then signature, `iss`, `aud`, `exp`, `nbf`
 * and `iat`. Errors: `unauthenticated` for anything wrong with the token, `unavailable` when
 * the issuer cannot be reached or serves something unusable. Details never echo claim values.
 */
export function createOidcVerifier(opts: OidcVerifierOptions) {
  const fetchImpl = boundedFetch(opts.fetch ?? fetch, MAX_DOCUMENT_BYTES, opts.timeoutMs);
  const keySets = new Map<string, { keys: Promise<JWTVerifyGetKey>; expiresAt: number }>();

  async function discover(issuer: string): Promise<JWTVerifyGetKey> {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetchImpl(url, { headers: { accept: 'application/json' } });
      if (res.status !== 200) throw unreachable(issuer, `its discovery document answered HTTP ${res.status}`);
      doc = (await res.json()) as typeof doc;
    } catch (e) {
      throw e instanceof DomainError ? e : unreachable(issuer, 'its discovery document could not be fetched', e);
    }
    // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one it was fetched for.
    if (doc.issuer !== issuer) throw unreachable(issuer, 'its discovery document names another issuer');
    const jwksUri = typeof doc.jwks_uri === 'string' && URL.canParse(doc.jwks_uri) ? new URL(doc.jwks_uri) : undefined;
    if (jwksUri?.protocol !== 'https:') throw unreachable(issuer, 'its discovery document has no https jwks_uri');
    return createRemoteJWKSet(jwksUri, {
      timeoutDuration: opts.timeoutMs,
      cooldownDuration: opts.jwksCooldownMs,
      cacheMaxAge: opts.jwksMaxAgeMs,
      [customFetch]: fetchImpl,
    });
  }

  function keysOf(issuer: string): Promise<JWTVerifyGetKey> {
    const now = opts.now().getTime();
    const cached = keySets.get(issuer);
    if (cached && cached.expiresAt > now) return cached.keys;
    const keys = discover(issuer);
    keySets.set(issuer, { keys, expiresAt: now + opts.discoveryTtlMs });
    // A failed discovery is not cached: the next token tries again.
    keys.catch(() => keySets.get(issuer)?.keys === keys && keySets.delete(issuer));
    return keys;
  }

  return {
    /** Reads the issuer of a token without trusting anything in it, rejecting `none` and HMAC at once. */
    peek(token: string): UnverifiedToken {
      let alg: unknown;
      let iss: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
        iss = decodeJwt(token).iss;
      } catch {
        throw invalid('malformed_jwt', 'the bearer token looks like a JWT but cannot be decoded');
      }
      if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg)) {
        throw invalid('unsupported_jwt_algorithm', `OIDC tokens must be signed with an asymmetric algorithm (${ASYMMETRIC_ALGORITHMS.join(', ')})`);
      }
      if (typeof iss !== 'string' || !iss.startsWith('https://')) throw invalid('untrusted_issuer', 'the OIDC token has no https issuer that this server trusts');
      return { issuer: iss };
    },

    /** Verifies signature and registered claims; `audiences` are those the issuer's rules accept. */
    async verify(token: string, issuer: string, audiences: readonly string[]): Promise<JWTPayload & { sub: string }> {
      const keys = await keysOf(issuer);
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer,
          audience: [...audiences],
          algorithms: ASYMMETRIC_ALGORITHMS,
          clockTolerance: opts.clockToleranceSeconds,
          maxTokenAge: opts.maxTokenAgeSeconds,
          requiredClaims: ['exp', 'iat', 'sub'],
          currentDate: opts.now(),
        });
        if (typeof payload.sub !== 'string' || payload.sub === '') throw invalid('invalid_token_claims', 'the OIDC token was rejected: "sub" must be a non-empty string');
        return payload as JWTPayload & { sub: string };
      } catch (e) {
        throw verificationError(issuer, e);
      }
    },
  };
}

export type OidcVerifier = ReturnType<typeof createOidcVerifier>;

/** jose's error → what the client should hear: 401 for the token's faults, 503 for the issuer's. */
function verificationError(issuer: string, e: unknown): DomainError {
  const code = (e as { code?: unknown }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('token_expired', `the OIDC token has expired or is too old (${(e as Error).message})`);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return invalid('invalid_token_claims', `the OIDC token was rejected: ${(e as Error).message}`);
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalid('unknown_signing_key', "the OIDC token's signing key (kid) is not in the issuer's key set");
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('invalid_signature', 'the OIDC token signature is not valid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWK_INVALID':
      return invalid('invalid_token', `the OIDC token is not valid: ${(e as Error).message}`);
    default:
      // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a non-200 answer, a network error.
      return e instanceof DomainError ? e : unreachable(issuer, 'its key set could not be fetched', e);
  }
}

/**
 * A fetch that gives up after `timeoutMs` and refuses bodies over `maxBytes`, so that an
 * issuer can neither hang a request nor fill memory.
 */
function boundedFetch(fetchImpl: typeof fetch, maxBytes: number, timeoutMs: number): typeof fetch {
  return async (input, init) => {
    const signal = init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const res = await fetchImpl(input, { ...init, signal, redirect: 'error' });
    if (res.status !== 200) {
      await res.body?.cancel();
      return new Response(null, { status: res.status });
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of res.body ?? []) {
      size += (chunk as Uint8Array).byteLength;
      if (size > maxBytes) throw new Error(`response larger than ${maxBytes} bytes`);
      chunks.push(chunk as Uint8Array);
    }
    return new Response(Buffer.concat(chunks), { status: 200, headers: res.headers });
  };
}
