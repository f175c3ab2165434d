import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on loopback (bound and released; the caller binds it next). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });

/**
 * Debian's `docker-registry` (distribution 2.8), the reference OCI registry, as a benchmark
 * peer: filesystem storage in `dir`, no auth, on a loopback port. Installed by
 * scripts/install-test-deps.sh; missing, the bench fails rather than report no baseline.
 */
export async function startDistribution(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  await mkdir(join(dir, 'data'), { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true }, redirect: { disable: true }, maintenance: { uploadpurging: { enabled: false } } }`,
      `http: { addr: "127.0.0.1:${port}", secret: bench-only }`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (e) => (stderr += String(e)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i > 100) throw new Error(`docker-registry did not start (is it installed? scripts/install-test-deps.sh): ${stderr.slice(-500)}`);
    const up = await fetch(`${url}/v2/`).then((r) => r.ok, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
