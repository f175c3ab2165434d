import { randomBytes } from 'node:crypto';
import { copyFile, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Accel } from './accel-probe.ts';
import { ComposeError, toComposeError } from './errors.ts';
import { BOOT_CHECK_CREDENTIAL, BOOT_MARKER } from './guest-files.ts';
import { OVMF_CODE, OVMF_VARS } from './host-tools.ts';
import { CommandError } from './run-command.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * Stage 5: proves the shipped qcow2 boots, with Secure Boot enforced: q35 with SMM, OVMF's
 * Secure Boot code and a fresh copy of its Microsoft-keys variable store, the image behind a
 * throw-away overlay (the tested file is never written; the overlay is larger, so first-boot
 * root growth runs too). A random nonce goes in as the SMBIOS systemd credential that
 * activates the image's boot-check unit; only "MARKER nonce" on the serial port counts.
 *
 * The serial log is scanned as raw bytes (a login prompt ends without a newline). QEMU ends
 * when the guest powers off, reboots (-no-reboot: a kernel or initramfs panic ends the test
 * at once) or the deadline passes; it is killed by its process group in every other case.
 */
export interface BootTestOptions extends StageContext {
  image: string;
  /** The image's virtual size; the overlay adds `growBytes` on top. */
  virtualSize: number;
  /** Where the serial console is written; kept for the build log. */
  serialLog: string;
  accel: Accel;
  timeoutMs?: number;
  growBytes?: number;
  memoryMiB?: number;
  /** Default 2: multi-threaded TCG halves the systemd part of the boot (measured 71 s → 47 s). */
  cpus?: number;
}

export interface BootTestResult {
  markerSeen: boolean;
  serialLog: string;
  accel: Accel;
  /** Seconds from QEMU start to the marker (or to the end). */
  seconds: number;
  /** Reported by the guest with the marker: root_bytes, addrs, failed_units. */
  facts: Record<string, string>;
  /** Why it failed: guest exited without marker, deadline. */
  reason: string | null;
}

export async function runBootTest(opts: BootTestOptions): Promise<BootTestResult> {
  const ws = opts.workspace.dir;
  const overlay = join(ws, 'boot-overlay.qcow2');
  const vars = join(ws, 'OVMF_VARS.fd');
  const nonce = randomBytes(12).toString('hex');
  const needle = Buffer.from(`${BOOT_MARKER} ${nonce}`);
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const grow = opts.growBytes ?? 1024 ** 3;
  const started = performance.now();
  let markerAt: number | null = null;
  const facts: Record<string, string> = {};
  try {
    await exec(opts, 'qemu-img', ['create', '-f', 'qcow2', '-b', opts.image, '-F', 'qcow2', overlay, String(opts.virtualSize + grow)], { timeoutMs: 60_000 });
    await copyFile(OVMF_VARS, vars);
    await writeFile(opts.serialLog, '');

    const local = new AbortController();
    const signal = AbortSignal.any([opts.signal, local.signal]);
    const qemu = exec({ ...opts, signal }, 'qemu-system-x86_64', [
      '-machine', 'q35,smm=on', '-accel', opts.accel, '-m', String(opts.memoryMiB ?? 1024), '-smp', String(opts.cpus ?? 2),
      '-nodefaults', '-display', 'none', '-no-reboot', '-no-user-config',
      '-global', 'driver=cfi.pflash01,property=secure,value=on',
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-drive', `if=none,id=disk0,format=qcow2,file=${overlay}`, '-device', 'virtio-blk-pci,drive=disk0',
      '-netdev', 'user,id=net0', '-device', 'virtio-net-pci,netdev=net0',
      '-device', 'virtio-rng-pci',
      '-serial', `file:${opts.serialLog}`,
      '-smbios', `type=11,value=io.systemd.credential:${BOOT_CHECK_CREDENTIAL}=${nonce}`,
    ], { timeoutMs, killGraceMs: 2000, tag: 'qemu' });
    let exited = false;
    let powerOffTimer: NodeJS.Timeout | undefined;
    const done = qemu.then(() => undefined, (e: unknown) => e).finally(() => { exited = true; });

    const serial = await open(opts.serialLog, 'r');
    try {
      let seen = Buffer.alloc(0);
      let offset = 0;
      let pending = '';
      while (!exited) {
        await Promise.race([done, sleep(500)]);
        const chunk = Buffer.alloc(64 * 1024);
        for (;;) {
          const { bytesRead } = await serial.read(chunk, 0, chunk.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          const data = chunk.subarray(0, bytesRead);
          seen = Buffer.concat([seen, data]).subarray(-64 * 1024);
          pending = logSerial(opts.log, pending + data.toString('latin1'));
          if (markerAt === null && seen.includes(needle)) {
            markerAt = performance.now();
            // The guest powers off right after the marker; give it 30 s, then kill QEMU.
            powerOffTimer = setTimeout(() => local.abort(), 30_000);
          }
        }
        for (const m of seen.toString('latin1').matchAll(/imgsrv-boot-facts ([^\r\n]*)/g))
          for (const kv of (m[1] ?? '').trim().split(/\s+/)) {
            const i = kv.indexOf('=');
            if (i > 0) facts[kv.slice(0, i)] = kv.slice(i + 1);
          }
      }
      if (pending.trim()) opts.log(`[serial] ${pending.trim()}`);
    } finally {
      clearTimeout(powerOffTimer);
      await serial.close();
    }
    const outcome = await done;
    if (opts.signal.aborted) throw new ComposeError('cancelled', 'boot-test', 'boot-test: cancelled');
    const seconds = Math.round(((markerAt ?? performance.now()) - started) / 100) / 10;
    if (markerAt !== null) return { markerSeen: true, serialLog: opts.serialLog, accel: opts.accel, seconds, facts, reason: null };
    let reason = 'QEMU exited before the boot marker appeared (guest powered off, rebooted or crashed)';
    if (outcome instanceof CommandError && outcome.reason === 'timeout') reason = `no boot marker within ${Math.round(timeoutMs / 1000)} s`;
    else if (outcome instanceof CommandError && outcome.reason === 'exit') reason = `QEMU failed (${outcome.message}) before the boot marker appeared`;
    return { markerSeen: false, serialLog: opts.serialLog, accel: opts.accel, seconds, facts, reason };
  } catch (err) {
    throw toComposeError(err, 'boot-test', 'boot_test_failed');
  }
}

/** Logs complete serial lines without terminal escapes; returns the unfinished rest. */
function logSerial(log: (line: string) => void, text: string): string {
  const parts = text.split(/\r\n|\n|\r/);
  const rest = parts.pop() ?? '';
  for (const p of parts) {
    // eslint-disable-next-line no-control-regex
    const clean = p.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd();
    if (clean) log(`[serial] ${clean}`);
  }
  return rest.length > 4096 ? rest.slice(-4096) : rest;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
