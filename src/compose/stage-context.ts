import { runCommand } from './run-command.ts';
import type { CommandOptions, CommandResult } from './run-command.ts';
import type { Workspace } from './workspace.ts';

/**
 * What every stage receives besides its own inputs: where to log, when to stop, and the
 * build's workspace (scratch space and the record of spawned process groups).
 */
export interface StageContext {
  log: (line: string) => void;
  signal: AbortSignal;
  workspace: Workspace;
}

/** runCommand bound to a stage: same log and signal, every process recorded in the workspace. */
export function exec(
  ctx: StageContext,
  cmd: string,
  args: readonly string[],
  extra: Omit<CommandOptions, 'cmd' | 'args' | 'log' | 'signal' | 'onSpawn'>,
): Promise<CommandResult> {
  return runCommand({ ...extra, cmd, args, log: ctx.log, signal: ctx.signal, onSpawn: (pid) => ctx.workspace.track(pid) });
}

/** Milliseconds since `start`, rounded, for the per-stage timings. */
export const elapsed = (start: number): number => Math.round(performance.now() - start);
