import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ComposeClient } from './compose-api.ts';

/**
 * The rootfs cache of compose tests: kept between runs on the same machine, so that only the
 * first run downloads and unpacks the base system. `IMGSRV_TEST_CACHE` moves it.
 */
export const COMPOSE_TEST_CACHE = join(process.env.IMGSRV_TEST_CACHE ?? join(homedir(), '.cache', 'imgsrv-test'), 'compose-rootfs');

/** The longest a build may take in a test: a cold build with its boot test under TCG takes about 2 to 3 minutes here. */
export const BUILD_TIMEOUT_MS = 15 * 60_000;

/** Polls a compose until it has finished; returns its last status and every image state seen on the way. */
export async function waitForCompose(api: ComposeClient, id: string, timeoutMs = BUILD_TIMEOUT_MS): Promise<{ status: any; seen: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const seen: string[] = [];
  for (;;) {
    const res = await api.get(`/composes/${id}`);
    assert.equal(res.status, 200, res.text);
    const state: string = res.json.image_status.status;
    if (seen.at(-1) !== state) seen.push(state);
    if (res.json.status !== 'pending') return { status: res.json, seen };
    if (Date.now() > deadline) throw new Error(`compose ${id} still ${state} after ${timeoutMs} ms (seen ${seen.join(' → ')})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Resolves once the compose's log has a line matching `pattern` (the build reached that stage). */
export async function waitForLogLine(api: ComposeClient, id: string, pattern: RegExp, timeoutMs = BUILD_TIMEOUT_MS): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let after = 0; ; ) {
    const res = await api.get(`/composes/${id}/logs?after=${after}`);
    assert.equal(res.status, 200, res.text);
    const line = (res.json.image_builds[0].lines as string[]).find((l) => pattern.test(l));
    if (line) return line;
    if (res.json.finished) throw new Error(`compose ${id} finished without a log line matching ${pattern}`);
    after = res.json.next;
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The whole log of a compose as text (`follow=true`: the answer ends when the compose has). */
export async function followLog(api: ComposeClient, id: string): Promise<string> {
  const res = await api.get(`/composes/${id}/logs?follow=true`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text;
}

/** Processes whose command line names something under `dir` (a build's mmdebstrap, tar, mksquashfs or QEMU). */
export function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(dir)) found.push(`${pid}: ${cmdline.slice(0, 200)}`);
  }
  return found;
}

/** What is left in a compose work directory (nothing, once no build runs). */
export const leftIn = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).sort();
