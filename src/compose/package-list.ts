import { join } from 'node:path';
import { toComposeError } from './errors.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * The installed packages of a built tree, read with the host's dpkg-query against the tree's
 * dpkg database (`--admindir`): nothing from the image runs. This is what
 * `GET /composes/{id}/metadata` reports (osbuild's PackageMetadata: name, version, arch).
 */
export interface InstalledPackage {
  name: string;
  version: string;
  arch: string;
}

export async function listPackages(ctx: StageContext, opts: { rootDir: string }): Promise<InstalledPackage[]> {
  try {
    const { stdout } = await exec(ctx, 'dpkg-query', [
      `--admindir=${join(opts.rootDir, 'var/lib/dpkg')}`, '--show', '--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n',
    ], { timeoutMs: 60_000, captureStdout: true });
    return parseDpkgQuery(stdout);
  } catch (err) {
    throw toComposeError(err, 'packages', 'image_config_failed');
  }
}

/** Keeps installed packages only ("ii"), sorted by name; removed-but-configured ones are not in the image. */
export function parseDpkgQuery(text: string): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const line of text.split('\n')) {
    const [status, name, version, arch] = line.split('\t');
    if (!status?.startsWith('ii') || !name || !version || !arch) continue;
    out.push({ name, version, arch });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
