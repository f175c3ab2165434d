import type { AptRepository, BuildRequest } from './build-request.ts';

/**
 * The image's apt sources in deb822 form. The same text feeds every mmdebstrap pass (given
 * as a file, mmdebstrap pastes it into the chroot unchanged), so the shipped image can
 * `apt-get install` from exactly the archives it was built from, payload repositories
 * included (their packages then get updates too). Pure.
 *
 * Debian archives are checked against debian-archive-keyring, present both on the build host
 * and in every image (apt depends on it); a payload repository's key is embedded inline
 * (apt >= 2.3: a multi-line Signed-By holding the armored block), so no key file has to
 * exist at a path that means different things outside and inside the chroot.
 */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export function aptSources(req: BuildRequest): string {
  const c = req.distribution.codename;
  const stanzas = [
    stanza({ uri: req.mirror, suites: [c, `${c}-updates`], components: ['main'], signedBy: DEBIAN_KEYRING }),
  ];
  if (req.securityMirror !== null)
    stanzas.push(stanza({ uri: req.securityMirror, suites: [`${c}-security`], components: ['main'], signedBy: DEBIAN_KEYRING }));
  for (const r of req.payloadRepositories) stanzas.push(payloadStanza(r));
  return `${stanzas.join('\n')}`;
}

function payloadStanza(r: AptRepository): string {
  if (!r.checkGpg) return stanza({ uri: r.baseurl, suites: [r.suite], components: r.components, trusted: true });
  if (r.gpgKey === null) return stanza({ uri: r.baseurl, suites: [r.suite], components: r.components });
  return stanza({ uri: r.baseurl, suites: [r.suite], components: r.components, signedBy: inlineKey(r.gpgKey) });
}

function stanza(s: { uri: string; suites: readonly string[]; components: readonly string[]; signedBy?: string; trusted?: boolean }): string {
  // A suite ending in "/" is a flat repository: deb822 then requires no Components.
  const flat = s.suites.length === 1 && s.suites[0]?.endsWith('/');
  const lines = ['Types: deb', `URIs: ${s.uri}`, `Suites: ${s.suites.join(' ')}`];
  if (!flat) lines.push(`Components: ${s.components.join(' ')}`);
  if (s.signedBy !== undefined) lines.push(`Signed-By: ${s.signedBy}`);
  if (s.trusted) lines.push('Trusted: yes');
  return `${lines.join('\n')}\n`;
}

/** deb822 continuation lines: each key line indented by one space, empty lines as " .". */
function inlineKey(armored: string): string {
  return `\n${armored.split(/\r?\n/).map((l) => (l.trim() === '' ? ' .' : ` ${l}`)).join('\n')}`;
}
