import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DomainError } from '../../src/domain/errors.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';

/**
 * A metadata store opened on the same SQLite file by another process: a second server instance,
 * as the race cases need it. better-sqlite3 is synchronous, so a second connection in this
 * process would block the thread on the first one's lock; in a process of its own it contends
 * for the file lock for real. Calls and results cross by structured clone (Dates survive);
 * DomainErrors keep their kind and code.
 */
export async function sqlitePeer(file: string): Promise<MetadataStore> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./store-peer-process.ts', import.meta.url)), [file], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  let next = 0;
  child.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: { kind?: string; code?: string; detail?: string; message: string } }) => {
    const call = pending.get(m.id);
    if (!call) return;
    pending.delete(m.id);
    if (m.ok) call.resolve(m.value);
    else if (m.error?.kind) call.reject(new DomainError(m.error.kind as never, m.error.code!, m.error.detail!));
    else call.reject(new Error(m.error?.message));
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`store peer exited (${code})`)));
  });
  return new Proxy({} as MetadataStore, {
    get(_target, method: string) {
      if (method === 'then') return undefined;
      if (method === 'close') {
        return async () => {
          process.off('exit', reap);
          child.kill();
          await new Promise((r) => child.once('exit', r));
        };
      }
      return (...args: unknown[]) =>
        new Promise((resolve, reject) => {
          const id = next++;
          pending.set(id, { resolve, reject });
          child.send({ id, method, args });
        });
    },
  });
}
