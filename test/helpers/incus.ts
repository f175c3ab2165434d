import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Runs the real `incus` CLI with its own configuration; resolves to what it printed. */
export type IncusCli = (...args: string[]) => Promise<string>;

/**
 * The `incus` client with a simplestreams remote `imgsrv` at `url`, configured under `work`
 * (`INCUS_CONF`), the server's self-signed certificate `ca` pinned: the client trusts
 * `servercerts/<remote>.crt` for that remote. Every call gets a fresh `INCUS_CACHE`, since the
 * client keeps a remote's feed for an hour.
 */
export async function incusRemote(work: string, url: string, ca: string, timeoutMs = 120_000): Promise<IncusCli> {
  const conf = join(work, 'incus-conf');
  const incus: IncusCli = async (...args) => {
    const cache = await mkdtemp(join(work, 'incus-cache-'));
    return execFileSync('incus', args, { env: { ...process.env, INCUS_CONF: conf, INCUS_CACHE: cache }, encoding: 'utf8', timeout: timeoutMs });
  };
  await mkdir(join(conf, 'servercerts'), { recursive: true });
  await incus('remote', 'add', 'imgsrv', url, '--protocol', 'simplestreams', '--public');
  await writeFile(join(conf, 'servercerts', 'imgsrv.crt'), ca);
  return incus;
}
