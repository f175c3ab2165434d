import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who holds a job lease: `host:boot:pidns:pid:nonce`. The boot id and pid namespace make a
 * process id meaningful: only a process on the same boot of the same machine, in the same pid
 * namespace, can tell whether another owner's pid is still alive. Replicas in their own
 * containers (each often pid 1) never mistake one another for dead; their leases lapse instead.
 */
export interface Owner {
  id: string;
  /** True only when `other` certainly belongs to a process that no longer runs. */
  isDead(other: string): boolean;
}

const safe = (read: () => string) => {
  try {
    return read().trim().replace(/[^0-9A-Za-z-]/g, '');
  } catch {
    return 'unknown';
  }
};

export function currentOwner(): Owner {
  const host = hostname().replace(/:/g, '-');
  const boot = safe(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const pidns = safe(() => readlinkSync('/proc/self/ns/pid'));
  const id = `${host}:${boot}:${pidns}:${process.pid}:${randomBytes(4).toString('hex')}`;
  return {
    id,
    isDead(other) {
      const [oHost, oBoot, oNs, oPid] = other.split(':');
      if (other === id || oHost !== host || oBoot !== boot || oNs !== pidns || boot === 'unknown' || pidns === 'unknown') return false;
      // Our own pid under another nonce is a predecessor that this process replaced.
      return Number(oPid) === process.pid || !isAlive(Number(oPid));
    },
  };
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
