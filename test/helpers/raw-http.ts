import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request whose body the test writes piece by piece, for races a fetch client cannot stage:
 * a part that is still streaming while something else happens. `response` settles when the
 * server answers (it may answer before the body is complete) or the connection breaks.
 */
export interface HeldRequest {
  write(chunk: Buffer): Promise<void>;
  end(chunk?: Buffer): void;
  destroy(): void;
  response: Promise<RawResponse | { error: Error }>;
}

export function heldRequest(url: string, opts: { method: string; headers: Record<string, string | number> }): HeldRequest {
  const req = httpRequest(url, { method: opts.method, headers: opts.headers });
  const response = new Promise<RawResponse | { error: Error }>((resolve) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
  });
  req.flushHeaders();
  // A write waits for the socket to drain, or for the server to answer or drop the connection.
  const settled = response.then(() => undefined);
  return {
    write: (chunk) => Promise.race([new Promise<void>((resolve) => (req.write(chunk) ? resolve() : req.once('drain', () => resolve()))), settled]),
    end: (chunk) => void (chunk ? req.end(chunk) : req.end()),
    destroy: () => req.destroy(),
    response,
  };
}

/** One request with a fixed body, answered in full (no contract check: for raw paths and headers). */
export function rawRequest(url: string, opts: { method: string; headers?: Record<string, string | number>; body?: Buffer | string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
